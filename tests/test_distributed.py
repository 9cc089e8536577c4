"""Distributed mode: a coordinator service, workers that come and go, `submit` and `status`,
all as real processes talking over TCP on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from helpers import (
    JOBS,
    ROOT,
    finish_cli,
    kill_group,
    read_counts,
    read_pairs,
    reference_lines,
    run_cli,
    small_splits,
    start_cli,
    wordcount_reference,
    write_corpus,
)

WORDCOUNT = ROOT / "jobs" / "wordcount.py"


def test_wordcount_through_coordinator_three_workers_and_submit(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    for _ in range(3):
        cluster.start_worker()
    cluster.wait_for_workers(3)
    out = tmp_path / "out"
    result = cluster.submit(
        WORDCOUNT, [tmp_path / "corpus"], out, "--reducers", 3, *small_splits("2KB")
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    assert "output: " in result.stderr
    status = cluster.status()
    assert [job["status"] for job in status["jobs"]] == ["succeeded"]
    assert sorted(w["tasks_done"] > 0 for w in status["workers"]) == [True, True, True]
    assert all(
        {"id", "host", "pid", "tasks_done", "last_heartbeat_s"} <= set(w) for w in status["workers"]
    )


def test_submit_with_reducers_0_runs_the_job_map_only(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    out = tmp_path / "out"
    result = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], out, "-r", 0, *small_splits("4KB"))
    assert result.returncode == 0, result.stderr
    words = [
        (word, "1")
        for path in corpus
        for line in reference_lines(path)
        for word in re.findall(r"[A-Za-z]+", line.lower())
    ]
    assert read_pairs(out, raw=True) == words  # the map output in input order
    assert "reduce task" not in result.stderr and len(list(out.glob("part-*"))) > 1


def test_submit_warns_of_a_binary_looking_input_on_its_own_stderr(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    binary = tmp_path / "corpus" / "archive.gz.part"
    binary.write_bytes(b"\x1f\x8b\x08\x00 words\n" * 500)
    result = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], tmp_path / "out", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"mapreduce: warning: input file {binary} looks binary (a NUL byte in "
        f"its first 8 KiB) but is read as text, line by line; pass "
        f"--skip-binary to skip such files\n"
    )
    assert read_counts(tmp_path / "out") == wordcount_reference([*corpus, binary])


def test_relative_paths_are_resolved_on_the_client(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    result = cluster.submit(WORDCOUNT, ["corpus"], "relative-out", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_counts(tmp_path / "relative-out") == wordcount_reference(corpus)


def _start_slow_submit(cluster, tmp_path, workers: int, *options):
    """A coordinator, `workers` workers, and `submit` of the slow word count (3 ms a record) over 6
    files; returns (submit process, corpus, markers dir, output dir)."""
    corpus = write_corpus(tmp_path / "corpus", files=6, lines=200)
    markers = tmp_path / "markers"
    markers.mkdir()
    cluster.start_coordinator()
    for _ in range(workers):
        cluster.start_worker()
    cluster.wait_for_workers(workers)
    out = tmp_path / "out"
    proc = start_cli(
        [
            "submit",
            JOBS / "slow_words.py",
            tmp_path / "corpus",
            "-c",
            cluster.address,
            "-o",
            out,
            *options,
        ],
        env={"MARKER_DIR": str(markers)},
    )
    return proc, corpus, markers, out


def test_workers_killed_and_restarted_in_a_loop_while_a_job_runs(cluster, tmp_path):
    proc, corpus, _, out = _start_slow_submit(cluster, tmp_path, 3, "-r", 3, *small_splits("2KB"))
    try:
        for round_ in range(4):
            time.sleep(0.7)
            victim = cluster.workers[round_ % len(cluster.workers)]
            kill_group(victim.pid)  # SIGKILL: worker and its executor
            victim.wait()
            cluster.workers.remove(victim)
            cluster.start_worker()
    finally:
        result = finish_cli(proc, timeout=180)
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)


def test_worker_that_joins_mid_job_receives_tasks(cluster, tmp_path):
    proc, corpus, markers, out = _start_slow_submit(
        cluster, tmp_path, 1, "-r", 2, *small_splits("1KB")
    )
    try:
        deadline = time.monotonic() + 30
        while not any(markers.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        late = cluster.start_worker()
        deadline = time.monotonic() + 60
        late_worker = None
        while time.monotonic() < deadline:
            workers = {w["pid"]: w for w in cluster.status()["workers"]}
            late_worker = workers.get(late.pid)
            if late_worker and late_worker["tasks_done"] > 0:
                break
            time.sleep(0.1)
    finally:
        result = finish_cli(proc, timeout=120)
    assert result.returncode == 0, result.stderr
    assert late_worker and late_worker["tasks_done"] > 0
    assert read_counts(out) == wordcount_reference(corpus)


def test_two_jobs_submitted_at_once_both_finish_with_separate_outputs(cluster, tmp_path):
    first = write_corpus(tmp_path / "a", files=3, lines=150, seed=1)
    second = write_corpus(tmp_path / "b", files=3, lines=150, seed=2)
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.start_worker()
    cluster.wait_for_workers(2)
    results = {}

    def submit(name):
        results[name] = cluster.submit(
            WORDCOUNT, [tmp_path / name], tmp_path / f"out-{name}", *small_splits("2KB"), "-q"
        )

    threads = [threading.Thread(target=submit, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert results["a"].returncode == 0, results["a"].stderr
    assert results["b"].returncode == 0, results["b"].stderr
    assert read_counts(tmp_path / "out-a") == wordcount_reference(first)
    assert read_counts(tmp_path / "out-b") == wordcount_reference(second)


def test_restarted_coordinator_is_rejoined_by_running_workers(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    cluster.start_worker()
    cluster.start_worker()
    cluster.wait_for_workers(2)
    port = cluster.port
    cluster.stop_coordinator()
    time.sleep(1.0)  # the workers notice the silence
    cluster.start_coordinator(port)
    cluster.wait_for_workers(2, timeout=60)  # they reconnect on their own (backoff 1 s, 2 s, ...)
    out = tmp_path / "out"
    result = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], out, "-q")
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)


def test_submit_to_a_wrong_address_fails_fast_with_a_clear_message(corpus, tmp_path):
    started = time.monotonic()
    result = finish_cli(
        start_cli(
            [
                "submit",
                WORDCOUNT,
                *corpus,
                "-c",
                "tcp://127.0.0.1:9",
                "-o",
                tmp_path / "out",
                "--timeout",
                "2",
            ]
        ),
        timeout=30,
    )
    assert result.returncode != 0
    assert "no answer from a coordinator at tcp://127.0.0.1:9" in result.stderr
    assert time.monotonic() - started < 20
    assert not (tmp_path / "out").exists()


def test_ctrl_c_on_submit_cancels_the_job_and_the_coordinator_serves_the_next(
    cluster, corpus, tmp_path
):
    markers = tmp_path / "markers"
    markers.mkdir()
    cluster.start_coordinator()
    cluster.start_worker()
    cluster.start_worker()
    cluster.wait_for_workers(2)
    out = tmp_path / "cancelled"
    proc = start_cli(
        [
            "submit",
            JOBS / "slow_words.py",
            tmp_path / "corpus",
            "-c",
            cluster.address,
            "-o",
            out,
            *small_splits("2KB"),
        ],
        env={"MARKER_DIR": str(markers)},
    )
    try:
        deadline = time.monotonic() + 30
        while not any(markers.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
    finally:
        result = finish_cli(proc, timeout=30)
    assert result.returncode == 130, result.stderr
    assert "cancelled" in result.stderr
    time.sleep(0.5)
    assert not out.exists()
    assert [job["status"] for job in cluster.status()["jobs"]] == ["cancelled"]
    # A failing job next, then a good one: the service carries on as if nothing happened.
    bad = cluster.submit(
        JOBS / "always_raises.py",
        [tmp_path / "corpus"],
        tmp_path / "bad",
        "--max-attempts",
        2,
        env={"MARKER_DIR": str(markers)},
    )
    assert bad.returncode == 1 and "always raises" in bad.stderr
    good = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], tmp_path / "good", "-q")
    assert good.returncode == 0, good.stderr
    assert read_counts(tmp_path / "good") == wordcount_reference(corpus)


def test_job_importing_a_library_the_workers_lack_names_the_module(cluster, corpus, tmp_path):
    library = tmp_path / "clientlib"
    library.mkdir()
    (library / "client_only_helper.py").write_text("def words(line):\n    return line.split()\n")
    job = tmp_path / "needs_lib.py"
    job.write_text(
        "import client_only_helper\n\n"
        "def mapper(key, line):\n"
        "    for w in client_only_helper.words(line):\n        yield w, 1\n\n"
        "def reducer(key, values):\n    yield key, sum(values)\n"
    )
    cluster.start_coordinator()
    cluster.start_worker()
    cluster.wait_for_workers(1)
    result = cluster.submit(
        job,
        [tmp_path / "corpus"],
        tmp_path / "out",
        "--max-attempts",
        1,
        env={"PYTHONPATH": str(library)},
    )
    assert result.returncode == 1
    assert "client_only_helper" in result.stderr and "not installed" in result.stderr


def test_workers_started_before_the_coordinator_join_it(cluster, corpus, tmp_path):
    import socket as pysocket

    with pysocket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster.address = f"tcp://127.0.0.1:{port}"
    cluster.start_worker()
    cluster.start_worker()
    time.sleep(0.5)
    cluster.start_coordinator(port)
    cluster.wait_for_workers(2, timeout=60)
    result = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], tmp_path / "out", "-q")
    assert result.returncode == 0, result.stderr
    assert read_counts(tmp_path / "out") == wordcount_reference(corpus)


def test_version_skew_is_refused_naming_both_versions(cluster):
    import json

    import zmq

    from mapreduce import protocol
    from mapreduce.security import default_keys_dir, secure_client

    cluster.start_coordinator()
    context = zmq.Context()
    try:
        for command, header, expected in [
            (
                protocol.READY,
                {"worker": "old", "python": "2.7", "cloudpickle": "0.1"},
                protocol.REFUSE,
            ),
            (
                protocol.SUBMIT,
                {"python": "3.99", "cloudpickle": "9.9", "submission": {}},
                protocol.REJECTED,
            ),
        ]:
            peer = context.socket(zmq.DEALER)
            peer.setsockopt(zmq.LINGER, 0)
            role = "worker" if command == protocol.READY else "client"
            secure_client(peer, default_keys_dir(), role)  # the key set the coordinator uses
            peer.connect(cluster.address)
            peer.send_multipart(protocol.encode(protocol.Message(command, header, [b"x"])))
            assert peer.poll(10_000), "no answer"
            reply = protocol.decode(peer.recv_multipart())
            peer.close(0)
            assert reply.command == expected
            text = json.dumps(reply.header)
            assert protocol.runtime_versions()["python"] in text
            assert header["python"] in text
    finally:
        context.term()
    assert cluster.coordinator.poll() is None


def test_multi_step_job_through_submit(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    out = tmp_path / "top"
    result = cluster.submit(
        ROOT / "jobs/top_words.py", [tmp_path / "corpus"], out, "-p", "n=3", "-q"
    )
    assert result.returncode == 0, result.stderr
    counts = wordcount_reference(corpus)
    expected = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[:3]
    lines = [
        line.split("\t")
        for part in sorted(out.glob("part-*"))
        for line in part.read_text().splitlines()
    ]
    assert [(w, int(c)) for w, c in lines] == expected


def test_ctrl_c_while_the_submission_is_being_accepted_still_cancels_the_job():
    # The coordinator starts tasks before it answers SUBMIT; a Ctrl-C in that window must not
    # leave the job running with nobody to cancel it (seen as a flaky Ctrl-C test under load).
    import pytest

    from mapreduce.client import follow
    from mapreduce.errors import JobCancelledError
    from mapreduce.progress import ProgressReporter

    class Client:
        cancelled = []

        def cancel(self, job_id):
            self.cancelled.append(job_id)
            return {"job": job_id, "status": "cancelled"}

        def watch(self, job_id):
            raise AssertionError("the held Ctrl-C must be raised before watching")

    def submit_interrupted_before_the_answer():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        return "job-1"

    with pytest.raises(
        JobCancelledError, match="the job was cancelled and no output was committed"
    ):
        follow(
            Client(),
            submit_interrupted_before_the_answer,
            ProgressReporter(quiet=True),
            time.monotonic(),
            "out",
        )
    assert Client.cancelled == ["job-1"]


def test_status_shows_each_jobs_counters(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    markers = tmp_path / "markers"
    markers.mkdir()
    result = cluster.submit(
        JOBS / "with_counters.py",
        [tmp_path / "corpus"],
        tmp_path / "out",
        "--reducers",
        2,
        env={"MARKER_DIR": str(markers)},
    )
    assert result.returncode == 0, result.stderr
    reference = wordcount_reference(corpus)
    lines = sum(len(reference_lines(p)) for p in corpus)
    expected = f"counters input: lines={lines}, words={sum(reference.values())}"
    assert expected in result.stderr
    [job] = cluster.status()["jobs"]
    assert job["counters"]["user"]["output"] == {"keys": len(reference)}
    text = run_cli("status", "--coordinator", cluster.address, timeout=30)
    assert text.returncode == 0, text.stderr
    assert expected in text.stdout and f"counters output: keys={len(reference)}" in text.stdout
    assert (
        f"records: {lines} in, {sum(reference.values())} mapped, {len(reference)} out"
        in text.stdout
    )
