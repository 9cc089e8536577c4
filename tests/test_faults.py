"""Faults from docs' fault matrix: user exceptions, dying and hanging workers, stragglers, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from helpers import (
    FAST,
    JOBS,
    ROOT,
    children_of,
    finish_cli,
    read_counts,
    reference_lines,
    run_cli,
    small_splits,
    start_cli,
    wordcount_reference,
    write_corpus,
)


def test_mapper_raising_every_time_fails_after_four_attempts_with_the_users_traceback(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=20)
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "always_raises.py",
        *data,
        "-o",
        out,
        "-w",
        2,
        *FAST,
        env={"MARKER_DIR": str(markers)},
    )
    assert result.returncode == 1
    assert len(list(markers.iterdir())) == 4  # 4 attempts, one call each
    assert "map task 0" in result.stderr and "doc00.txt" in result.stderr
    assert "failed 4 time(s)" in result.stderr
    assert "always raises: marked message 7f3a" in result.stderr
    assert "always_raises.py" in result.stderr and "in mapper" in result.stderr
    assert "mapreduce/" not in result.stderr  # user frames only
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert not result.leftover


def test_reducer_combiner_and_partitioner_failing_once_are_retried(corpus, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "flaky_first_attempt.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        3,
        *small_splits("3KB"),
        *FAST,
        env={"MARKER_DIR": str(markers)},
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in markers.iterdir()) == ["combiner", "partitioner", "reducer"]
    assert read_counts(out) == wordcount_reference(corpus)
    assert "failed" in result.stderr  # the summary reports the failed attempts


def test_task_that_keeps_killing_its_process_fails_after_ten_losses(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=5)
    out = tmp_path / "out"
    result = run_cli("run", JOBS / "exits_hard.py", *data, "-o", out, "-w", 2, *FAST)
    assert result.returncode == 1
    assert "died 10 times" in result.stderr and "exited with status 3" in result.stderr
    assert not out.exists() and not result.leftover


def test_chaos_of_crashing_and_sleeping_attempts_still_gives_exact_output(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=8, lines=120)
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "chaos.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        3,
        *small_splits("2KB"),
        "-q",
        *FAST,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _worker_pids(run_pid):
    return children_of(run_pid)


def _start_slow_run(tmp_path, *options, env=None, split_size="2KB", verbose=False):
    """`run` of the slow word count (3 ms a record) over 4 files of about 7 KB; returns (process,
    corpus, markers, output dir). The markers directory gets a file named map-PID or reduce-PID
    once a process has run a map or reduce call."""
    corpus = write_corpus(tmp_path / "corpus", files=4, lines=200)
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    proc = start_cli(
        [
            *(["-v"] if verbose else []),
            "run",
            JOBS / "slow_words.py",
            tmp_path / "corpus",
            "-o",
            out,
            "-w",
            2,
            *small_splits(split_size),
            *options,
            *FAST,
        ],
        env={"MARKER_DIR": str(markers), **(env or {})},
    )
    return proc, corpus, markers, out


def test_sigkilled_worker_is_replaced_and_its_task_rerun(tmp_path):
    proc, corpus, marker, out = _start_slow_run(tmp_path, "-r", 2)
    try:
        workers = _wait_for(lambda: len(_worker_pids(proc.pid)) == 2 and _worker_pids(proc.pid))
        _wait_for(lambda: any(marker.iterdir()))  # a task is running
        os.kill(workers[0], signal.SIGKILL)
        _wait_for(lambda: len(set(_worker_pids(proc.pid)) - set(workers)) >= 1)  # replaced
    finally:
        result = finish_cli(proc, timeout=120)
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    # Usually the killed worker held a task and the summary reports a lost attempt; the kill can
    # also land in the millisecond between two tasks, so that is not asserted here (lost attempts
    # being re-run is asserted by the chaos, exits_hard and scheduler tests).
    assert not result.leftover


def test_hung_worker_is_declared_dead_and_its_late_result_discarded(tmp_path):
    # One file a split: 4 map attempts of about 0.6 s. A worker is stopped (SIGSTOP) while its
    # executor runs one; the executor finishes it, but the stopped worker cannot pass the result
    # on, nor heartbeat, so it is declared dead and its attempt runs elsewhere. Woken up, it sends
    # the result, which the coordinator must discard: the run logs both (-v).
    proc, corpus, markers, out = _start_slow_run(tmp_path, "-r", 2, split_size="8KB", verbose=True)
    stopped = None
    try:
        worker = _wait_for(lambda: len(_worker_pids(proc.pid)) == 2 and _worker_pids(proc.pid))[0]
        executor = _wait_for(lambda: children_of(worker))[0]
        _wait_for(lambda: (markers / f"map-{executor}").exists())  # it runs a map attempt
        os.kill(worker, signal.SIGSTOP)
        stopped = worker
        time.sleep(1.5)  # > liveness (0.5 s), > the attempt (0.6 s)
        os.kill(worker, signal.SIGCONT)
        stopped = None
    finally:
        if stopped:
            os.kill(stopped, signal.SIGCONT)
        result = finish_cli(proc, timeout=120)
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    assert not result.leftover
    worker_id = re.search(rf"assigned to (\S+-{worker}-\w+)", result.stderr).group(1)
    assert f"worker {worker_id} declared dead" in result.stderr, result.stderr
    # The discarded result is of an attempt that was assigned to the hung worker.
    assigned = set(
        re.findall(rf"(\S+ map-\d+ attempt \d+) assigned to {worker_id}\n", result.stderr)
    )
    discarded = re.findall(
        r"discarded a late result of (\S+ map-\d+ attempt \d+) from unregistered peer",
        result.stderr,
    )
    assert discarded and set(discarded) <= assigned, result.stderr


def test_straggler_gets_a_backup_attempt_and_the_job_finishes(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=3, lines=50)
    (tmp_path / "corpus" / "slow.txt").write_text("slow river words\n" * 10)
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    # The first attempt of slow.txt's map sleeps 600 s: only a backup attempt can finish the job.
    result = run_cli(
        "run",
        JOBS / "slow_map.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        2,
        *small_splits("1KB"),
        "--backup-after",
        "1",
        *FAST,
        env={"MARKER_DIR": str(markers)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference([*corpus, tmp_path / "corpus" / "slow.txt"])
    assert re.search(r"\d+ attempts \(.*\b\d+ backups?\)", result.stderr), result.stderr
    assert not result.leftover


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_cancels_run_leaving_no_output_and_no_processes(tmp_path, sig, status):
    proc, _, marker, out = _start_slow_run(tmp_path)
    try:
        _wait_for(lambda: any(marker.iterdir()))
        os.kill(proc.pid, sig)
    finally:
        result = finish_cli(proc, timeout=30)
    assert result.returncode == status, result.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert not result.leftover


def test_run_killed_outright_commits_nothing_and_rerun_with_overwrite_succeeds(tmp_path):
    temp = tmp_path / "temp"  # the runs' TMPDIR, to see what a killed run leaves there
    temp.mkdir()
    proc, corpus, marker, out = _start_slow_run(
        tmp_path, env={"REDUCE_SLEEP": "0.3", "TMPDIR": str(temp)}
    )
    try:
        _wait_for(lambda: any(p.name.startswith("reduce") for p in marker.iterdir()), timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        finish_cli(proc, timeout=30)
    assert not (out / "_SUCCESS").exists() and not list(out.glob("part-*"))
    # It could not clean up: its staging beside the output and its shuffle files remain...
    assert [p.name for p in tmp_path.glob(".out.mapreduce-*")]
    assert [p.name for p in temp.glob("mapreduce-run-*")]
    result = run_cli(
        "run",
        ROOT / "jobs/wordcount.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "--overwrite",
        "-q",
        *FAST,
        env={"TMPDIR": str(temp)},
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    # ...until the next run, which removes what a dead process owned.
    assert not list(tmp_path.glob(".out.mapreduce-*")) and not list(temp.iterdir())
    assert not list(out.glob(".mapreduce-owner")) and not list(out.glob("_attempts"))


def test_leftovers_of_a_live_or_foreign_owner_are_kept(tmp_path):
    from mapreduce import leftovers

    mine = tmp_path / "mapreduce-run-live"
    mine.mkdir()
    leftovers.mark_owned(str(mine))  # this test process: alive
    foreign = tmp_path / "mapreduce-run-foreign"
    foreign.mkdir()
    (foreign / leftovers.OWNER_FILE).write_text('{"host": "elsewhere", "pid": 1, "started": 1}')
    unmarked = tmp_path / "mapreduce-run-unmarked"
    unmarked.mkdir()
    dead = tmp_path / "mapreduce-run-dead"
    dead.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that no longer runs
    (dead / leftovers.OWNER_FILE).write_text(
        json.dumps({"host": socket.gethostname(), "pid": child.pid, "started": 1})
    )
    removed = leftovers.remove_abandoned(str(tmp_path / "mapreduce-run-*"))
    assert removed == [str(dead)]
    assert mine.exists() and foreign.exists() and unmarked.exists() and not dead.exists()


def test_output_does_not_change_after_run_returns(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/wordcount.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        *small_splits("2KB"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    time.sleep(1.0)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    assert not result.leftover


def test_lost_map_output_is_reported_by_the_reducer_and_the_map_rerun(corpus, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/wordcount.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        2,
        *small_splits("3KB"),
        *FAST,
        module="faulty_cli",
    )
    assert result.returncode == 0, result.stderr
    assert "fault injection: deleted the output" in result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    assert "lost" in result.stderr  # the reduce attempt that could not read it


def test_user_counters_sum_committed_attempts_only(corpus, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "with_counters.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        2,
        *small_splits("3KB"),
        *FAST,
        env={"MARKER_DIR": str(markers)},
    )
    assert result.returncode == 0, result.stderr
    reference = wordcount_reference(corpus)
    lines = sum(len(reference_lines(p)) for p in corpus)
    assert f"counters input: lines={lines}, words={sum(reference.values())}" in result.stderr
    assert f"counters output: keys={len(reference)}" in result.stderr
    assert "1 failed" in result.stderr
