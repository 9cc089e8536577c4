"""/metrics: Prometheus text, parsed with prometheus-client's own parser during and after a real
job on a real coordinator and workers, its figures checked against the job's known counts."""

from __future__ import annotations

import collections
import json
import time

from helpers import (
    JOBS,
    WORD,
    Cluster,
    finish_cli,
    http_get,
    kill_group,
    metric_samples,
    small_splits,
    start_cli,
    status_page_url,
    write_corpus,
)
from mapreduce.coordinator.snapshot import Publisher


def scrape(url: str) -> dict:
    code, body = http_get(url + "/metrics")
    assert code == 200, body
    return metric_samples(body.decode())


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_during_and_after_a_job_match_its_known_counts(tmp_path):
    data = write_corpus(tmp_path / "data", files=4, lines=300)
    text = "".join(path.read_text(encoding="utf-8") for path in data)
    words = collections.Counter(WORD.findall(text.lower()))
    lines = text.count("\n")
    markers = tmp_path / "markers"
    markers.mkdir()
    cluster = Cluster(tmp_path)
    submit = None
    try:
        cluster.start_coordinator(None, "--http", "127.0.0.1:0")
        url = status_page_url(cluster.logs[0], cluster.coordinator)
        cluster.start_worker(1)
        cluster.start_worker(1)
        cluster.wait_for_workers(2)
        submit = start_cli(
            [
                "submit",
                JOBS / "slow_words.py",
                *data,
                "--coordinator",
                cluster.address,
                "-o",
                tmp_path / "out",
                "-r",
                2,
                *small_splits("4KiB"),
            ],
            env={"MARKER_DIR": str(markers)},
        )
        during = []
        deadline = time.monotonic() + 90
        while submit.poll() is None and time.monotonic() < deadline:
            samples = scrape(url)
            if value(samples, "mapreduce_jobs", state="running") == 1:
                during.append(samples)
            time.sleep(0.2)
        result = finish_cli(submit, 30)
        assert result.returncode == 0, result.stderr

        # While it ran: one running job on two workers of one slot each; records flowed in.
        assert during, "no scrape saw the job running"
        assert all(value(s, "mapreduce_workers_connected") == 2 for s in during)
        assert all(value(s, "mapreduce_worker_slots") == 2 for s in during)
        seen = [value(s, "mapreduce_records_in_total") for s in during]
        assert seen == sorted(seen) and any(0 < n < lines for n in seen), seen

        # Afterwards: the job's exact figures.
        status = cluster.status()
        (job,) = status["jobs"]
        progress = job["progress"]
        deadline = time.monotonic() + 10
        while value(samples := scrape(url), "mapreduce_jobs", state="succeeded") != 1:
            assert time.monotonic() < deadline, "the finished job never showed in /metrics"
            time.sleep(0.1)
        assert value(samples, "mapreduce_jobs", state="running") == 0
        assert value(samples, "mapreduce_records_in_total") == lines
        assert value(samples, "mapreduce_records_mapped_total") == sum(words.values())
        assert value(samples, "mapreduce_records_out_total") == len(words)
        assert value(samples, "mapreduce_shuffle_bytes_total") == job["counters"]["shuffle_bytes"]
        assert (
            value(samples, "mapreduce_task_attempts_total", kind="map", outcome="succeeded")
            == (progress["maps"])
        )
        assert (
            value(samples, "mapreduce_task_attempts_total", kind="reduce", outcome="succeeded")
            == (progress["reduces"])
        )
        for outcome, figure in (("failed", "failed"), ("lost", "lost"), ("backup", "backups")):
            counted = sum(
                value(samples, "mapreduce_task_attempts_total", kind=kind, outcome=outcome)
                for kind in ("map", "reduce")
            )
            assert counted == progress[figure], outcome
        ended = sum(
            value(samples, "mapreduce_task_attempts_total", kind=kind, outcome=outcome)
            for kind in ("map", "reduce")
            for outcome in ("succeeded", "failed", "lost", "cancelled")
        )
        assert ended == progress["attempts"]
        timed = sum(
            value(samples, "mapreduce_task_attempt_duration_seconds_count", kind=kind)
            for kind in ("map", "reduce")
        )
        assert timed == progress["attempts"]
        # submitted, one per attempt assigned, one per task published, committing, ended, cleaned
        assert value(samples, "mapreduce_journal_writes_total") == (
            4 + progress["attempts"] + progress["maps"] + progress["reduces"]
        )
        assert value(samples, "mapreduce_missed_heartbeats_total") >= 0
        assert all(name.startswith("mapreduce_") for name, _ in samples)
        assert json.loads(http_get(url + "/api/status")[1])["jobs"] == status["jobs"]
    finally:
        if submit is not None:
            kill_group(submit.pid)
        cluster.close()


def test_each_coordinator_has_its_own_registry():
    first, second = Publisher(), Publisher()
    first.metrics.journal_writes.inc(3)
    assert (
        value(metric_samples(first.metrics.text().decode()), "mapreduce_journal_writes_total") == 3
    )
    assert (
        value(metric_samples(second.metrics.text().decode()), "mapreduce_journal_writes_total") == 0
    )
