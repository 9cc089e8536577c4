"""The coordinator's journal: a restart loses nothing.

Fast tests of the format (torn and damaged tails, versions, the lock, compaction) and of replay
in-process; one slow test kills a real coordinator at random points of 20 jobs and restarts it."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from helpers import (
    JOBS,
    Cluster,
    finish_cli,
    free_port,
    kill_group,
    run_cli,
    small_splits,
    start_cli,
)
from mapreduce.coordinator import Coordinator, JobSubmission
from mapreduce.coordinator import journal as journal_module
from mapreduce.coordinator.journal import JournalError, LocalJournal, compacted, encode, fold
from mapreduce.errors import MapReduceError

SLOW_WORDS = JOBS / "slow_words.py"


def submitted(job: str, tmp_path: Path, splits: int = 2, reducers: int = 1) -> dict:
    submission = JobSubmission(
        "wc",
        b"code",
        [{"segments": [[str(tmp_path / f"in{i}.txt"), 0, 10]]} for i in range(splits)],
        [f"in{i}.txt" for i in range(splits)],
        reducers,
        str(tmp_path / f"out-{job}"),
    )
    header, code = submission.to_wire()
    return {
        "type": "submitted",
        "job": job,
        "at": time.time(),
        "request": None,
        "staging": str(tmp_path / f".out-{job}.mapreduce-{job}"),
        "shuffle_dir": str(tmp_path / "work" / job),
        "submission": header,
        "code": journal_module.encode_code(code),
    }


def write_journal(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        encode(journal_module.header()) + b"".join(encode(record) for record in records)
    )


def ended(job: str, status: str = "succeeded") -> dict:
    return {
        "type": "ended",
        "job": job,
        "name": "wc",
        "output": f"/tmp/out-{job}",
        "staging": "",
        "shuffle_dir": "",
        "request": None,
        "submitted_at": time.time() - 5,
        "finished_at": time.time(),
        "status": status,
        "error": None if status == "succeeded" else "map task 0 failed",
        "exit_code": 0 if status == "succeeded" else 1,
        "counters": {"map_input_records": 3},
        "progress": {"maps": 2, "maps_done": 2},
    }


# ---- the format ---------------------------------------------------------------------------------


def test_a_torn_last_record_and_a_garbage_tail_replay_the_valid_prefix(tmp_path):
    work = tmp_path / "work"
    records = [ended("a"), ended("b"), ended("c")]
    write_journal(work / "coordinator.journal", records)
    whole = (work / "coordinator.journal").read_bytes()

    (work / "coordinator.journal").write_bytes(whole[:-7])  # the last record cut short
    journal = LocalJournal(str(work))
    read, damage = journal.read()
    journal.close()
    assert [r.get("job") for r in read[1:]] == ["a", "b"]
    assert "cut short" in damage

    (work / "coordinator.journal").write_bytes(whole + b"\x00\xffgarbage\nmore garbage\n")
    journal = LocalJournal(str(work))
    read, damage = journal.read()
    journal.close()
    assert [r.get("job") for r in read[1:]] == ["a", "b", "c"]
    assert "damaged record" in damage

    flipped = bytearray(whole)
    flipped[whole.index(b'"b"') + 1] = ord("x")  # one byte of record b changed: its crc fails
    (work / "coordinator.journal").write_bytes(bytes(flipped))
    journal = LocalJournal(str(work))
    read, damage = journal.read()
    journal.close()
    assert [r.get("job") for r in read[1:]] == ["a"] and "checksum" in damage


def test_a_coordinator_replays_the_prefix_says_so_once_and_keeps_going(tmp_path, caplog):
    work = tmp_path / "work"
    write_journal(work / "coordinator.journal", [ended("a"), ended("b", "failed")])
    with open(work / "coordinator.journal", "ab") as handle:
        handle.write(encode(ended("c"))[:-9])  # torn
    coordinator = Coordinator(
        "tcp://127.0.0.1:*", work_dir=str(work), journal=LocalJournal(str(work))
    )
    try:
        jobs = coordinator.status()["jobs"]
        assert [(j["job"], j["status"]) for j in jobs] == [("a", "succeeded"), ("b", "failed")]
        assert (
            jobs[1]["error"] == "map task 0 failed"
            and jobs[0]["counters"]["map_input_records"] == 3
        )
    finally:
        coordinator.close()
    warnings = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
    assert len(warnings) == 1, warnings
    # The journal was rewritten without the torn tail: a second start reads it whole.
    journal = LocalJournal(str(work))
    read, damage = journal.read()
    journal.close()
    assert damage is None
    assert [r["job"] for r in read if r["type"] == "ended"] == ["a", "b"]


def test_a_journal_of_a_newer_version_is_refused_with_a_paragraph(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "coordinator.journal").write_bytes(encode({"type": "journal", "version": 99}))
    journal = LocalJournal(str(work))
    try:
        with pytest.raises(JournalError, match="newer mapreduce .*version 99.*another --work-dir"):
            journal.read()
    finally:
        journal.close()


def test_a_second_coordinator_on_the_same_work_dir_is_refused(tmp_path):
    first = LocalJournal(str(tmp_path))
    try:
        with pytest.raises(JournalError, match="another coordinator is using"):
            LocalJournal(str(tmp_path))
    finally:
        first.close()
    LocalJournal(str(tmp_path)).close()  # free again once the first is closed


def test_fold_restores_attempts_and_published_outputs_and_compaction_keeps_them(tmp_path):
    records = [
        submitted("j", tmp_path),
        {"type": "assigned", "job": "j", "task": "map-00000", "attempt": 1, "worker": "w"},
        {"type": "assigned", "job": "j", "task": "map-00001", "attempt": 1, "worker": "w"},
        {"type": "assigned", "job": "j", "task": "map-00001", "attempt": 2, "worker": "w"},
        {"type": "published", "job": "j", "task": "map-00001", "attempt": 2, "result": {"x": 1}},
        {"type": "published", "job": "j", "task": "map-00000", "attempt": 1, "result": {"y": 1}},
        {"type": "map_lost", "job": "j", "task": "map-00000"},
        {"type": "assigned", "job": "ghost", "task": "map-00000", "attempt": 1, "worker": "w"},
        ended("old"),
        {"type": "cleaned", "job": "old"},
    ]
    jobs = fold(records)
    assert list(jobs) == ["j", "old"]
    job = jobs["j"]
    assert job.attempts == {"map-00000": 1, "map-00001": 2}
    assert job.published == {"map-00001": (2, {"x": 1})}  # map-00000's output was lost since
    assert jobs["old"].cleaned and jobs["old"].submitted is None
    again = fold(compacted(jobs, finished_kept=10))
    assert again["j"].attempts == job.attempts and again["j"].published == job.published
    assert again["j"].submitted == job.submitted and again["old"].ended == jobs["old"].ended
    assert list(fold(compacted(jobs, finished_kept=0))) == ["j"]  # history beyond the limit goes


def test_a_restarted_coordinator_resumes_a_job_without_rerunning_its_published_maps(tmp_path):
    """In-process: a journal that says map 1 of 2 was published; the resumed job is told to
    run map 0 (attempt 2: attempt 1 was running at the crash) and never map 1."""
    work = tmp_path / "work"
    record = submitted("j", tmp_path)
    staging = Path(record["staging"])
    (staging / "_attempts").mkdir(parents=True)
    Path(record["shuffle_dir"]).mkdir(parents=True)
    write_journal(
        work / "coordinator.journal",
        [
            record,
            {"type": "assigned", "job": "j", "task": "map-00000", "attempt": 1, "worker": "w"},
            {"type": "assigned", "job": "j", "task": "map-00001", "attempt": 1, "worker": "w"},
            {"type": "published", "job": "j", "task": "map-00001", "attempt": 1, "result": {}},
        ],
    )
    coordinator = Coordinator(
        "tcp://127.0.0.1:*", work_dir=str(work), journal=LocalJournal(str(work))
    )
    try:
        [state] = coordinator.status()["jobs"]
        assert state["job"] == "j" and state["status"] == "running"
        assert state["progress"]["maps_done"] == 1 and state["progress"]["attempts"] == 2
        out = coordinator.scheduler.worker_ready("w2", 4, time.monotonic())
        assert [(a.task.id, a.attempt) for a in out] == [("map-00000", 2)]
        # The staging directory is this process's now: no other run removes it as abandoned.
        owner = json.loads((staging / "_attempts" / ".mapreduce-owner").read_text())
        assert owner["pid"] == os.getpid()
    finally:
        coordinator.close(cancel_running=False)
    assert staging.is_dir()  # left for the next start


def test_a_job_whose_staging_vanished_while_down_fails_with_a_paragraph(tmp_path):
    work = tmp_path / "work"
    write_journal(work / "coordinator.journal", [submitted("j", tmp_path)])
    coordinator = Coordinator(
        "tcp://127.0.0.1:*", work_dir=str(work), journal=LocalJournal(str(work))
    )
    try:
        deadline = time.monotonic() + 10
        while not coordinator.finished("j"):
            assert time.monotonic() < deadline
            coordinator.poll(0.05)
        state = coordinator.job_state("j")
        assert (
            state["status"] == "failed"
            and "vanished while the coordinator was down" in (state["error"])
        )
    finally:
        coordinator.close()


# ---- real processes -----------------------------------------------------------------------------


def write_words(directory: Path, files: int, lines: int) -> list[Path]:
    rng = random.Random(7)
    vocabulary = [f"w{n}" for n in range(300)]
    directory.mkdir(parents=True)
    paths = []
    for index in range(files):
        path = directory / f"doc{index}.txt"
        path.write_text(
            "".join(" ".join(rng.choices(vocabulary, k=6)) + "\n" for _ in range(lines))
        )
        paths.append(path)
    return paths


def parts(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.slow
def test_a_coordinator_killed_at_random_points_resumes_every_job(tmp_path):
    """SIGKILL the coordinator at a random point of each of 20 jobs (during map, between map and
    reduce, during reduce, and every fourth time during the commit), restart it with the same
    command: each job completes, byte-identical to an uninterrupted run, `submit` exits 0, no
    map published before the kill runs again, nothing is left in staging, and `status` after
    yet another restart lists all 20 jobs as succeeded."""
    corpus = write_words(tmp_path / "corpus", files=3, lines=150)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {"MARKER_DIR": str(markers), "COMMIT_MARKER_DIR": str(markers)}
    job_options = ["-r", 2, *small_splits("2KB")]
    reference = tmp_path / "reference"
    result = run_cli("run", SLOW_WORDS, *corpus, "-o", reference, *job_options, env=env)
    assert result.returncode == 0, result.stderr
    expected = parts(reference)

    cluster = Cluster(tmp_path)
    port = free_port()
    rng = random.Random(20261201)
    journal_path = cluster.work_dir / "coordinator.journal"
    try:
        cluster.start_coordinator(port, module="slow_commit_cli", env=env)
        cluster.start_worker(1)
        cluster.start_worker(1)
        cluster.wait_for_workers(2)
        for run in range(20):
            out = tmp_path / f"out{run}"
            commit_log = markers / "commit-started"
            commit_log.unlink(missing_ok=True)
            submit = start_cli(
                # --timeout: a request the kill cut off waits for the restarted coordinator.
                ["submit", SLOW_WORDS, *corpus, "-c", cluster.address, "-o", out, *job_options]
                + ["--timeout", 30],
                env=os.environ | env | {"COMMIT_MARKER_DIR": str(markers)},
            )
            try:
                if run % 4 == 3:  # during the commit
                    deadline = time.monotonic() + 30
                    while not commit_log.exists():
                        assert time.monotonic() < deadline and submit.poll() is None
                        time.sleep(0.01)
                    time.sleep(rng.uniform(0.0, 0.6))
                else:
                    time.sleep(rng.uniform(0.3, 2.5))
                cluster.stop_coordinator()  # SIGKILL
                before = fold(read_records(journal_path))
                cluster.start_coordinator(port, module="slow_commit_cli", env=env)
                result = finish_cli(submit, timeout=90)
            finally:
                kill_group(submit.pid)
            assert result.returncode == 0, (run, result.stderr, cluster.logs[-1].read_text())
            assert parts(out) == expected, run
            assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out{run}.")]
            # Attempts assigned since the restart: none of a map already published before it.
            job_id = next(iter(j for j in before if not before[j].ended), None)
            if job_id is not None:
                published = set(before[job_id].published)
                rerun = {
                    record["task"]
                    for record in read_records(journal_path)
                    if record.get("type") == "assigned" and record.get("job") == job_id
                }
                assert not (published & rerun), (run, published & rerun)
        cluster.stop_coordinator()
        cluster.start_coordinator(port, module="slow_commit_cli", env=env)
        jobs = cluster.status()["jobs"]
        assert len(jobs) == 20 and {job["status"] for job in jobs} == {"succeeded"}
        assert all(job["counters"]["map_input_records"] == 450 for job in jobs), jobs[0]["counters"]
        assert not any((cluster.work_dir).glob("2026*"))  # no job's shuffle files left
    finally:
        cluster_close(cluster)


def read_records(path: Path) -> list[dict]:
    copy = path.with_suffix(".copy")
    shutil.copyfile(path, copy)  # the live file is locked by the coordinator, but readable
    records, _ = journal_module.decode_lines(copy.read_bytes(), str(copy))
    return records


def cluster_close(cluster: Cluster) -> None:
    for worker in cluster.workers:
        kill_group(worker.pid)
    if cluster.coordinator is not None:
        kill_group(cluster.coordinator.pid)


def test_status_after_a_restart_lists_the_finished_jobs_with_their_outcome(tmp_path):
    corpus = write_words(tmp_path / "corpus", files=2, lines=20)
    cluster = Cluster(tmp_path)
    port = free_port()
    try:
        cluster.start_coordinator(port)
        cluster.start_worker(2)
        cluster.wait_for_workers(1)
        env = {"MARKER_DIR": str(tmp_path)}
        inputs = [str(p) for p in corpus]
        ok = cluster.submit(JOBS / "counting.py", inputs, tmp_path / "ok", env=env)
        assert ok.returncode == 0, ok.stderr
        bad = cluster.submit(JOBS / "always_raises.py", inputs, tmp_path / "bad", env=env)
        assert bad.returncode == 1
        cluster.stop_coordinator()
        cluster.start_coordinator(port)
        jobs = cluster.status()["jobs"]
        assert [j["status"] for j in jobs] == ["succeeded", "failed"]
        assert "always" in jobs[1]["error"] or "raise" in jobs[1]["error"].lower()
        assert jobs[0]["counters"]["map_input_records"] == 40
        text = run_cli("status", "--coordinator", cluster.address, timeout=30).stdout
        assert "succeeded" in text and "failed" in text
    finally:
        cluster_close(cluster)


def test_a_coordinator_started_twice_on_one_work_dir_says_so(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        cluster.start_coordinator()
        result = run_cli(
            "coordinator", "--bind", "tcp://127.0.0.1:0", "--work-dir", cluster.work_dir
        )
        assert result.returncode == 1 and "another coordinator is using" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        cluster_close(cluster)


def test_journal_error_is_a_user_error():
    assert issubclass(JournalError, MapReduceError)
