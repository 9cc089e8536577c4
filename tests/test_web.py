"""The live status page (mapreduce/web): its JSON API against `status --json`, the history a
restarted coordinator keeps, the token rule off loopback, `run --http`, and the page itself in a
real browser (headless Chromium from the system's packages, driven by Playwright)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from helpers import (
    FAST,
    JOBS,
    ROOT,
    Cluster,
    finish_cli,
    free_port,
    http_get,
    kill_group,
    read_counts,
    run_cli,
    small_splits,
    start_cli,
    status_page_url,
    wordcount_reference,
    write_corpus,
)

CHROMIUM = "/usr/bin/chromium"


def api(url: str, path: str, token: str | None = None):
    code, body = http_get(url + path, token)
    assert code == 200, (path, code, body)
    return json.loads(body)


def test_api_matches_status_json_and_finished_jobs_keep_their_history_across_a_restart(tmp_path):
    data = write_corpus(tmp_path / "data", files=2, lines=40)
    markers = tmp_path / "markers"
    markers.mkdir()
    cluster = Cluster(tmp_path)
    port = free_port()
    try:
        cluster.start_coordinator(port, "--http", "127.0.0.1:0")
        url = status_page_url(cluster.logs[0], cluster.coordinator)
        cluster.start_worker(2)
        cluster.wait_for_workers(1)
        env = {"MARKER_DIR": str(markers)}
        ok = cluster.submit(ROOT / "jobs" / "top_words.py", data, tmp_path / "top", env=env)
        assert ok.returncode == 0, ok.stderr
        bad = cluster.submit(
            JOBS / "always_raises.py", data, tmp_path / "bad", "--max-attempts", 2, env=env
        )
        assert bad.returncode == 1

        status = cluster.status()
        jobs = status["jobs"]
        # A multi-step job's steps are named as the module's single job is, with the step; no
        # step shows its hidden scratch directory as its output.
        assert [j["name"] for j in jobs] == [
            "top_words step 1/2",
            "top_words step 2/2",
            "always_raises",
        ]
        assert [j["status"] for j in jobs] == ["succeeded", "succeeded", "failed"]
        assert jobs[0]["output"].startswith(str(tmp_path / "top") + " (step 1")
        assert ".steps-" not in jobs[0]["output"] and jobs[1]["output"] == str(tmp_path / "top")
        failed = jobs[2]
        assert "marked message 7f3a" in failed["error"]
        assert failed["submitted_at"] <= failed["finished_at"] <= time.time()
        deadline = time.monotonic() + 10
        while api(url, "/api/status")["jobs"] != jobs:
            assert time.monotonic() < deadline, "/api/status never matched status --json"
            time.sleep(0.1)

        # A job's page: its tasks and every attempt, with the failure and who ran it.
        page = api(url, f"/api/jobs/{failed['job']}")
        assert {k: v for k, v in page.items() if k in failed} == failed
        map_task = next(t for t in page["tasks"] if t["kind"] == "map")
        assert map_task["state"] == "failed" and len(map_task["attempts"]) == 2
        for attempt in map_task["attempts"]:
            assert attempt["state"] == "failed" and "marked message 7f3a" in attempt["error"]
            assert attempt["worker"] in {w["id"] for w in status["workers"]}
            assert attempt["ended_at"] >= attempt["started_at"] and attempt["duration"] >= 0
        top = api(url, f"/api/jobs/{jobs[0]['job']}")
        assert sum(top["partitions"]) == top["counters"]["shuffle_records"]
        assert http_get(url + "/api/jobs/no-such-job")[0] == 404

        # The same jobs, with their outcome, error and times, after a restart.
        cluster.stop_coordinator()
        cluster.start_coordinator(port, "--http", "127.0.0.1:0")
        url = status_page_url(cluster.logs[-1], cluster.coordinator)
        after = cluster.status()["jobs"]
        fields = ("job", "name", "status", "output", "submitted_at", "finished_at", "error")
        assert [{k: j[k] for k in fields} for j in after] == [
            {k: j[k] for k in fields} for j in jobs
        ]
        history = api(url, f"/api/jobs/{failed['job']}")
        assert history["error"] == failed["error"] and history["tasks"] is None
        text = run_cli("status", "--coordinator", cluster.address, timeout=30).stdout
        assert "error: " in text and "marked message 7f3a" in text and "ended " in text
    finally:
        cluster.close()


def test_a_status_page_off_loopback_needs_a_token(tmp_path):
    work = ["--work-dir", tmp_path / "work", "--bind", "tcp://127.0.0.1:*"]
    refused = run_cli("coordinator", *work, "--http", "0.0.0.0:0", timeout=30)
    assert refused.returncode == 1
    assert "without a token" in refused.stderr and "Traceback" not in refused.stderr
    assert "--http-token" in refused.stderr

    cluster = Cluster(tmp_path)
    try:
        cluster.start_coordinator(None, "--http", "0.0.0.0:0", "--http-token", "s3cret")
        port = status_page_url(cluster.logs[0], cluster.coordinator).rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}"
        assert http_get(url + "/api/status")[0] == 401
        assert http_get(url + "/metrics", "wrong")[0] == 401
        assert api(url, "/api/status", "s3cret")["jobs"] == []
        assert api(url, "/api/status?token=s3cret")["workers"] == []
        assert http_get(url + "/metrics", "s3cret")[0] == 200
        code, page = http_get(url + "/")  # the page's own files: the package's, no data
        assert code == 200 and b"/static/app.js" in page
    finally:
        cluster.close()


def test_run_serves_the_page_while_it_lasts_and_not_with_inline(tmp_path):
    data = write_corpus(tmp_path / "data", files=3, lines=200)
    markers = tmp_path / "markers"
    markers.mkdir()
    refused = run_cli(
        "run", JOBS / "slow_words.py", *data, "-o", tmp_path / "x", "--inline", "--http", "0"
    )
    assert refused.returncode == 1 and "--inline" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "x").exists()

    log = tmp_path / "run.log"
    proc = start_cli(
        [
            "--log-file",
            log,
            "run",
            JOBS / "slow_words.py",
            *data,
            "-o",
            tmp_path / "out",
            "-w",
            2,
            "-r",
            2,
            "--http",
            "0",
            *small_splits("4KiB"),
            *FAST,
        ],
        env={"MARKER_DIR": str(markers)},
    )
    try:
        url = wait_for_page(proc)
        seen = []
        while proc.poll() is None:
            try:
                code, body = http_get(url + "/api/status")
            except OSError:  # the run ended: its page with it
                break
            assert code == 200, body
            seen += [j["progress"]["maps_done"] for j in json.loads(body)["jobs"]]
            time.sleep(0.1)
        result = finish_cli(proc, 30)
        assert result.returncode == 0, result.stderr
        assert seen and seen == sorted(seen) and max(seen) > 0, seen
        assert read_counts(tmp_path / "out") == wordcount_reference(data)
    finally:
        kill_group(proc.pid)


def wait_for_page(proc) -> str:
    """`run --http` announces its page on stderr: read it from the pipe."""
    lines = []
    while len(lines) < 20:
        lines.append(proc.stderr.readline())
        if "status page on" in lines[-1]:
            return lines[-1].split("status page on ", 1)[1].strip().rstrip("/")
        assert lines[-1], "".join(lines)
    raise AssertionError("".join(lines))


def browser_missing() -> str:
    if not os.path.exists(CHROMIUM):
        return (
            f"no browser at {CHROMIUM}: install Debian's chromium (`apt-get install -y "
            f"chromium`, as .ci/run does) to test the status page in a browser"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[test]'"
    return ""


LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.slow
@pytest.mark.skipif(bool(browser_missing()), reason=browser_missing() or "-")
def test_the_page_shows_progress_live_and_a_jobs_tasks_in_a_browser(tmp_path, request):
    from playwright.sync_api import sync_playwright

    data = write_corpus(tmp_path / "data", files=6, lines=400)
    markers = tmp_path / "markers"
    markers.mkdir()
    args = ["run", JOBS / "slow_words.py", *data, "-o", tmp_path / "out", "-w", 2, "-r", 3]
    proc = None
    try:
        with sync_playwright() as playwright:
            # The browser first: it may take seconds to start on a busy machine; the job would
            # not wait.
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            try:
                proc = start_cli(
                    [*args, "--http", "0", *small_splits("4KiB"), *FAST],
                    env={"MARKER_DIR": str(markers), "REDUCE_SLEEP": "0.02"},
                )
                url = wait_for_page(proc)
                page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's
                page.goto(url + "/")
                page.locator("#jobs tbody tr").first.wait_for(timeout=30_000)
                done = """() => [...document.querySelectorAll(
                    "#jobs tbody tr:first-child [role=progressbar]")]
                    .reduce((sum, bar) => sum + Number(bar.getAttribute("aria-valuenow")), 0)"""
                first = page.evaluate(done)
                page.wait_for_function(f"({done})() > {first}", timeout=60_000)
                # Polled, not reloaded: the same document, moved on.
                assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
                page.locator("#jobs a").first.click()
                page.wait_for_url("**/jobs/**")
                page.locator("#tasks tbody tr").first.wait_for(timeout=30_000)
                page.locator(".timeline svg rect").first.wait_for(timeout=30_000)
                assert "slow_words" in page.locator("h1").inner_text()
                assert "Started" in page.locator("#facts").inner_text()
                page.set_viewport_size({"width": 1200, "height": 900})
                page.screenshot(path=str(tmp_path / "status-page.png"), full_page=True)
                if request.config.getoption("--update-screenshot"):
                    shutil.copy(tmp_path / "status-page.png", ROOT / "docs" / "status-page.png")
                assert (tmp_path / "status-page.png").stat().st_size > 10_000
            finally:
                browser.close()
        result = finish_cli(proc, 60)
        assert result.returncode == 0, result.stderr
        assert read_counts(tmp_path / "out") == wordcount_reference(data)
    finally:
        if proc is not None:
            kill_group(proc.pid)


def test_the_snapshot_is_rebuilt_only_when_something_changed_and_at_most_every_interval():
    """The loop calls publish after every poll; the web thread must not cost it a rebuild each
    time (a real Scheduler and job records; only the socket loop around them is left out)."""
    import types

    from mapreduce import defaults
    from mapreduce.coordinator.jobs import JobRecord
    from mapreduce.coordinator.snapshot import Publisher
    from mapreduce.coordinator.submission import JobSubmission
    from mapreduce.scheduler import Scheduler

    now = time.monotonic()
    scheduler = Scheduler()
    scheduler.add_job("job", ["a", "b", "c"], 1, 4, 4, now)
    scheduler.worker_ready("w1", 2, now, {"host": "h", "pid": 1})
    record = JobRecord("job", JobSubmission("three", b"", [], [], 1, "/out"), "/s", "/w", now)
    coordinator = types.SimpleNamespace(
        scheduler=scheduler, jobs={"job": record}, changes=1, settings=scheduler.settings
    )
    publisher = Publisher()
    publisher.publish(coordinator)
    first = publisher.current
    assert json.loads(first.status)["jobs"][0]["progress"]["maps"] == 3
    publisher.publish(coordinator)
    assert publisher.current is first  # nothing changed
    coordinator.changes += 1
    publisher.publish(coordinator)
    assert publisher.current is first  # changed, but refreshed a moment ago
    time.sleep(defaults.STATUS_REFRESH_S)
    publisher.publish(coordinator)
    assert publisher.current is not first and publisher.current.built_at > first.built_at
    assert json.loads(publisher.current.jobs["job"])["tasks"] is None  # no page asked for it
    publisher.want("job")  # a page asks: built at the next poll, not after the interval
    publisher.publish(coordinator)
    tasks = json.loads(publisher.current.jobs["job"])["tasks"]
    assert [t["task"] for t in tasks] == ["map-00000", "map-00001", "map-00002", "reduce-00000"]
    assert sum(len(t["attempts"]) for t in tasks) == 2  # the worker's two slots
