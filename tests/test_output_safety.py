"""Nothing a user owns is lost: outputs that overlap inputs are refused, concurrent writers of one
output cannot both win, a job commits only when every part is in place, and a signal during the
commit leaves the old output or the new one, whole, with a message that says which."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import (
    FAST,
    JOBS,
    ROOT,
    children_of,
    finish_cli,
    free_port,
    kill_group,
    live_processes,
    read_counts,
    run_cli,
    start_cli,
    wordcount_reference,
    write_corpus,
)
from mapreduce import commit, storage
from mapreduce.coordinator import Coordinator, JobSubmission
from mapreduce.errors import JobCancelledError, MapReduceError, OutputError
from mapreduce.local import run_job
from mapreduce.scheduler import SchedulerSettings

WORDCOUNT = ROOT / "jobs" / "wordcount.py"


def tree(path: Path) -> dict:
    """Every file and symlink below `path` with its content's digest: compare before and after."""
    found = {}
    for item in sorted(path.rglob("*")):
        if item.is_symlink():
            found[str(item.relative_to(path))] = "-> " + os.readlink(item)
        elif item.is_file():
            found[str(item.relative_to(path))] = hashlib.sha256(item.read_bytes()).hexdigest()
    return found


# ----------------------------------------------------------------------------------------------
# OUTPUT and --work-dir against the inputs: refused before anything runs
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def nested(tmp_path):
    """anc/sub holds the input; anc/notes.txt is an unrelated file of the user's."""
    write_corpus(tmp_path / "anc" / "sub", files=2, lines=40)
    (tmp_path / "anc" / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "anc" / "sub")
    return tmp_path


OVERLAPS = [
    # (inputs, output, extra options, words the message must contain)
    (["anc/sub"], "anc", ["--overwrite"], ["--output 'anc' contains the input 'anc/sub'"]),
    (["anc/sub"], "anc/sub", ["--overwrite"], ["--output 'anc/sub' is the input 'anc/sub'"]),
    (["anc/sub"], "anc/sub", [], ["--output 'anc/sub' is the input 'anc/sub'"]),
    (["anc"], "anc/out", [], ["--output 'anc/out' lies inside the input 'anc'"]),
    (["anc/sub"], "anc/sub/x/../out", ["--overwrite"], ["lies inside the input 'anc/sub'"]),
    (["link"], "anc/sub/out", [], ["--output 'anc/sub/out' lies inside the input 'link'"]),
    (["anc/sub"], "link", ["--overwrite"], ["--output 'link' is the input 'anc/sub'"]),
    (["anc/*"], "anc/new/out", [], ["is matched by the input pattern 'anc/*'"]),
    (["anc/**/*.txt"], "anc/sub/deeper/out.txt", [], ["is matched by the input pattern"]),
    (
        ["anc/sub"],
        "out",
        ["--work-dir", "anc/sub/tmp"],
        ["--work-dir 'anc/sub/tmp' lies inside the input"],
    ),
    (
        ["anc/sub"],
        "out",
        ["--work-dir", "out/tmp"],
        ["--work-dir 'out/tmp' lies inside --output 'out'"],
    ),
]


@pytest.mark.parametrize("inputs,output,extra,words", OVERLAPS)
def test_output_or_work_dir_overlapping_an_input_is_refused_and_nothing_changes(
    nested, inputs, output, extra, words
):
    before = tree(nested)
    result = run_cli(
        "run", WORDCOUNT, *inputs, "-o", output, "-w", 2, "-q", *extra, *FAST, cwd=nested
    )
    assert result.returncode == 1, result.stderr
    assert all(word in result.stderr for word in words), result.stderr
    assert "Nothing was run or changed" in result.stderr and "Traceback" not in result.stderr
    assert tree(nested) == before  # the input and the user's file, untouched
    assert not (nested / "out").exists()


def test_overlap_is_refused_by_submit_and_by_the_coordinator_itself(nested, cluster):
    cluster.start_coordinator()
    before = tree(nested)
    result = cluster.submit(WORDCOUNT, ["anc/sub"], "anc", "--overwrite", cwd=nested)
    assert result.returncode == 1 and "contains the input" in result.stderr, result.stderr
    assert tree(nested) == before
    # The coordinator checks again what it is sent (by any client), its own work directory too.
    inside = str(nested / "anc" / "sub" / "doc00.txt")
    coordinator = Coordinator("tcp://127.0.0.1:*", work_dir=str(nested / "anc" / "sub" / "work"))
    try:
        for submission, message in (
            (submission_for([str(nested / "anc/sub")], nested / "anc"), "contains the input"),
            (submission_for([], nested / "anc", splits=[inside]), "contains the input"),
            (
                submission_for([str(nested / "anc/sub")], nested / "out"),
                "the coordinator's work directory",
            ),
        ):
            with pytest.raises(OutputError, match=message):
                coordinator.submit(submission)
    finally:
        coordinator.close()
    assert tree(nested) == before


def submission_for(inputs, output, splits=(), overwrite=True, reducers=1) -> JobSubmission:
    wire = [{"index": i, "segments": [[path, 0, 10]]} for i, path in enumerate(splits)]
    return JobSubmission(
        "test",
        b"",
        wire,
        [str(p) for p in splits],
        reducers,
        str(output),
        overwrite,
        inputs=list(inputs),
    )


def test_a_multi_step_job_checks_its_final_output_before_the_first_step(nested):
    before = tree(nested)
    result = run_cli(
        "run",
        ROOT / "jobs" / "top_words.py",
        "anc/sub",
        "-o",
        "anc",
        "--overwrite",
        *FAST,
        cwd=nested,
    )
    assert result.returncode == 1 and "contains the input 'anc/sub'" in result.stderr, result.stderr
    assert tree(nested) == before


def test_sibling_output_and_work_dir_are_fine(nested):
    result = run_cli(
        "run",
        WORDCOUNT,
        "anc/sub",
        "-o",
        "anc-out",
        "--work-dir",
        "anc-work",
        "-w",
        2,
        "-q",
        *FAST,
        cwd=nested,
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(nested / "anc-out") == wordcount_reference(
        sorted((nested / "anc/sub").iterdir())
    )


def test_places_of_uris_compare_by_bucket_and_prefix():
    assert storage.is_within("s3://b/data/out", "s3://b/data")
    assert storage.is_within("s3://b/data?endpoint_override=x", "s3://b/data/")
    assert storage.is_within("s3://b/data/../data/x", "s3://b/data")
    assert not storage.is_within("s3://b/database", "s3://b/data")  # a prefix of the name only
    assert not storage.is_within("s3://other/data/out", "s3://b/data")
    assert not storage.is_within("gs://b/data/out", "s3://b/data")
    assert not storage.is_within("/b/data/out", "s3://b/data")
    with pytest.raises(OutputError, match="contains the input"):
        commit.check_job_paths(["s3://b/data/in"], "s3://b/data")
    with pytest.raises(OutputError, match="lies inside the input"):
        commit.check_job_paths(["s3://b/data"], "s3://b/data/out")
    commit.check_job_paths(["s3://b/data/in"], "s3://b/data-out", "s3://b/tmp")


# ----------------------------------------------------------------------------------------------
# Concurrent writers of one output
# ----------------------------------------------------------------------------------------------


def finish_all(procs, timeout: float) -> list:
    """finish_cli for each process; every one's process group is killed whatever happens (the
    second is not left running when the first times out)."""
    try:
        return [finish_cli(proc, timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            kill_group(proc.pid)


def test_two_runs_committing_one_output_without_overwrite_exactly_one_wins(tmp_path):
    first = write_corpus(tmp_path / "a", files=3, lines=400, seed=1)
    second = write_corpus(tmp_path / "b", files=3, lines=400, seed=2)
    out = tmp_path / "out"
    procs = [
        start_cli(
            ["run", JOBS / "slow_words.py", tmp_path / name, "-o", out, "-w", 1, "-q", *FAST],
            env={"MARKER_DIR": str(tmp_path)},
        )
        for name in ("a", "b")
    ]
    results = finish_all(procs, timeout=120)
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode)
    assert "another job committed its output to" in loser.stderr, loser.stderr
    winner = 0 if results[0].returncode == 0 else 1
    assert read_counts(out) == wordcount_reference([first, second][winner])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_two_runs_with_overwrite_leave_one_whole_output(tmp_path):
    first = write_corpus(tmp_path / "a", files=3, lines=400, seed=1)
    second = write_corpus(tmp_path / "b", files=3, lines=400, seed=2)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old result")
    procs = [
        start_cli(
            [
                "run",
                JOBS / "slow_words.py",
                tmp_path / name,
                "-o",
                out,
                "-w",
                1,
                "-q",
                "--overwrite",
                *FAST,
            ],
            env={"MARKER_DIR": str(tmp_path)},
        )
        for name in ("a", "b")
    ]
    results = finish_all(procs, timeout=120)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    counts = read_counts(out)
    assert counts in (wordcount_reference(first), wordcount_reference(second))  # never a mix
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "part-00000"]


def test_commit_never_replaces_an_output_that_appeared_during_the_job(tmp_path):
    staging, out = tmp_path / ".out.mapreduce-x", tmp_path / "out"
    (staging / commit.ATTEMPTS_DIR).mkdir(parents=True)
    (staging / "part-00000").write_text("ours")
    out.mkdir()
    (out / "part-00000").write_text("theirs")
    with pytest.raises(commit.OutputTaken, match="another job committed its output"):
        commit.commit_job(str(staging), str(out), overwrite=False)
    assert tree(out) == {"part-00000": hashlib.sha256(b"theirs").hexdigest()}
    commit.commit_job(str(staging), str(out), overwrite=True)  # with --overwrite: ours
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "part-00000"]
    assert (out / "part-00000").read_text() == "ours" and not staging.exists()


def test_rename_no_replace_refuses_an_existing_destination(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep").write_text("keep")
    with pytest.raises(FileExistsError):
        commit.rename_no_replace(str(tmp_path / "a"), str(tmp_path / "b"))
    (tmp_path / "c").write_text("file")
    with pytest.raises(FileExistsError):
        commit.rename_no_replace(str(tmp_path / "a"), str(tmp_path / "c"))
    commit.rename_no_replace(str(tmp_path / "a"), str(tmp_path / "d"))
    assert (tmp_path / "d").is_dir() and (tmp_path / "b" / "keep").read_text() == "keep"


def test_a_second_submit_to_the_same_output_is_refused_while_the_first_runs(cluster, tmp_path):
    first = write_corpus(tmp_path / "a", files=3, lines=400, seed=1)
    write_corpus(tmp_path / "b", files=3, lines=400, seed=2)
    (tmp_path / "m").mkdir()
    cluster.start_coordinator()
    cluster.start_worker()
    cluster.wait_for_workers(1)
    out = tmp_path / "out"
    env = {"MARKER_DIR": str(tmp_path / "m")}
    proc = start_cli(
        [
            "submit",
            JOBS / "slow_words.py",
            tmp_path / "a",
            "--coordinator",
            cluster.address,
            "-o",
            out,
            "-q",
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while not list((tmp_path / "m").iterdir()):  # the first job is running
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = cluster.submit(
            JOBS / "slow_words.py", [tmp_path / "b"], out, "-q", "--overwrite", env=env
        )
    finally:
        result = finish_cli(proc, timeout=120)
    assert second.returncode == 1 and "is already writing its output to" in second.stderr, (
        second.stderr
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(first)


# ----------------------------------------------------------------------------------------------
# Publishing and committing, with the coordinator in this process (workers are real processes):
# the test hooks wrap the commit module's functions.
# ----------------------------------------------------------------------------------------------


def run_here(inputs, out, **options):
    return run_job(
        str(WORDCOUNT),
        [str(p) for p in inputs],
        str(out),
        workers=2,
        reducers=3,
        heartbeat_interval=0.1,
        liveness=50,
        quiet=True,
        **options,
    )


def failing_publish(monkeypatch, failures: int, task_id="reduce-00002"):
    """Make the publish of `task_id` fail `failures` times (as a full disk or a failed S3 copy
    would), after moving part of it: a half-done publish must not be committed either."""
    real = commit.publish_attempt
    calls = []

    def publish(staging, task, attempt):
        calls.append(task)
        if task == task_id and calls.count(task) <= failures:
            raise OSError(28, "No space left on device")
        return real(staging, task, attempt)

    monkeypatch.setattr(commit, "publish_attempt", publish)
    return calls


def test_a_failed_publish_of_the_last_task_reruns_it_before_the_commit(
    corpus, tmp_path, monkeypatch
):
    calls = failing_publish(monkeypatch, failures=1)
    out = tmp_path / "out"
    run_here(corpus, out)
    assert calls.count("reduce-00002") == 2  # published by a second attempt
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "part-00000",
        "part-00001",
        "part-00002",
    ]
    assert read_counts(out) == wordcount_reference(corpus)


def test_a_publish_that_keeps_failing_fails_the_job_and_commits_nothing(
    corpus, tmp_path, monkeypatch
):
    failing_publish(monkeypatch, failures=100)
    out = tmp_path / "out"
    with pytest.raises(MapReduceError) as failure:
        run_here(corpus, out, max_attempts=2)
    assert "reduce task 2" in failure.value.paragraph()
    assert "could not be put in place" in failure.value.paragraph()
    assert "No space left on device" in failure.value.paragraph()
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_an_exception_while_committing_fails_the_job_with_a_paragraph(
    corpus, tmp_path, monkeypatch
):
    import pyarrow as pa

    def broken(staging, output, overwrite=False, job_id=None):
        raise pa.ArrowInvalid("odd filesystem")  # a ValueError

    monkeypatch.setattr(commit, "commit_job", broken)
    out = tmp_path / "out"
    with pytest.raises(
        MapReduceError,
        match="could not be committed to .*ArrowInvalid: odd filesystem.*as it was before the job",
    ):
        run_here(corpus, out)
    assert not out.exists()


@pytest.mark.parametrize(
    "signum,name,code",
    [(signal.SIGINT, "interrupted", 130), (signal.SIGTERM, "terminated (SIGTERM)", 143)],
)
# As below: the signal's exception may be dropped in pyzmq's Frame destructor and raised again
# by interrupts.Noted; pytest's warning about the dropped one is expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_during_the_commit_lets_it_finish_and_says_so(
    corpus, tmp_path, monkeypatch, signum, name, code
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old result")
    real = commit.commit_job

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)  # arrives as the commit starts...
        real(*args, **kwargs)
        os.kill(os.getpid(), signum)  # ...and again before it is over

    monkeypatch.setattr(commit, "commit_job", signalled)
    with pytest.raises(JobCancelledError) as stopped:
        run_here(corpus, out, overwrite=True)
    assert stopped.value.exit_code == code
    assert stopped.value.paragraph().startswith(name)
    assert "the commit finished first" in stopped.value.paragraph()
    assert "complete output" in stopped.value.paragraph()
    assert read_counts_with_success(out) == wordcount_reference(corpus)


# The signal's exception may be raised in pyzmq's Frame destructor, which Python prints and drops
# (pytest reports it as a warning): interrupts.Noted raises it again, which this test checks.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_before_the_commit_leaves_the_old_output_and_says_so(
    corpus, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old result")
    real = commit.publish_attempt

    def signalled(staging, task, attempt):
        if task == "reduce-00002":
            os.kill(os.getpid(), signal.SIGINT)
        return real(staging, task, attempt)

    monkeypatch.setattr(commit, "publish_attempt", signalled)
    with pytest.raises(JobCancelledError) as stopped:
        run_here(corpus, out, overwrite=True)
    assert "no output was committed" in stopped.value.paragraph()
    assert "is as it was before the job" in stopped.value.paragraph()
    assert tree(out) == {"old.txt": hashlib.sha256(b"old result").hexdigest()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def read_counts_with_success(out: Path) -> dict:
    assert sorted(p.name for p in out.iterdir()) == [
        "_SUCCESS",
        "part-00000",
        "part-00001",
        "part-00002",
    ]
    return read_counts(out)


def test_commit_error_in_one_job_leaves_the_coordinator_serving_the_next(
    corpus, tmp_path, monkeypatch
):
    from mapreduce.prepare import JobOptions, prepare_submission
    from mapreduce.steps import load_steps
    from mapreduce.worker.pool import LocalPool

    real = commit.commit_job

    def broken_for_a(staging, output, overwrite=False, job_id=None):
        if output.endswith("out-a"):
            raise ValueError("cannot write here")
        return real(staging, output, overwrite, job_id)

    monkeypatch.setattr(commit, "commit_job", broken_for_a)
    [job] = load_steps(str(WORDCOUNT))
    settings = SchedulerSettings(heartbeat_interval=0.1, liveness=50)
    # A run's secret, as `mapreduce run` uses: the pool's workers use no keys then.
    coordinator = Coordinator(
        "tcp://127.0.0.1:*", work_dir=str(tmp_path / "work"), settings=settings, secret=b"s" * 32
    )
    pool = LocalPool(
        coordinator.address, 2, secret=coordinator.secret, heartbeat_interval=0.1, liveness=50
    )
    try:
        pool.start()
        ids = [
            coordinator.submit(
                prepare_submission(
                    job,
                    [str(p) for p in corpus],
                    str(tmp_path / f"out-{name}"),
                    JobOptions(reducers=2),
                    workers=2,
                )
            )
            for name in ("a", "b")
        ]
        deadline = time.monotonic() + 60
        while not all(coordinator.finished(job_id) for job_id in ids):
            assert time.monotonic() < deadline
            coordinator.poll(0.1)
        failed, succeeded = (coordinator.job(job_id) for job_id in ids)
        assert failed.status == "failed" and "cannot write here" in failed.error.paragraph()
        assert succeeded.status == "succeeded", succeeded.error
        assert read_counts(tmp_path / "out-b") == wordcount_reference(corpus)
        assert not (tmp_path / "out-a").exists()
    finally:
        pool.stop()
        coordinator.close()


def test_close_cancels_every_running_job_and_releases_the_socket(tmp_path):
    corpus = write_corpus(tmp_path / "in", files=1, lines=5)
    coordinator = Coordinator(
        "tcp://127.0.0.1:*", work_dir=str(tmp_path / "work"), finished_jobs_kept=1
    )
    ids = [
        coordinator.submit(
            submission_for([str(corpus[0])], tmp_path / f"out{n}", splits=[str(corpus[0])])
        )
        for n in range(4)
    ]
    stagings = [coordinator.job(job_id).staging for job_id in ids]
    assert all(os.path.isdir(path) for path in stagings)
    coordinator.close()  # no worker: all four are still queued
    assert coordinator.socket.closed and coordinator.context.closed
    assert not any(os.path.exists(path) for path in stagings)
    assert not any((tmp_path / "work").iterdir())


# ----------------------------------------------------------------------------------------------
# Processes that go away
# ----------------------------------------------------------------------------------------------


def test_a_dead_local_worker_is_one_log_line_and_its_attempt_runs_again_at_once(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=4, lines=300)
    markers = tmp_path / "m"
    markers.mkdir()
    log = tmp_path / "run.log"
    out = tmp_path / "out"
    # Liveness 0.1 s x 3000: were the attempt left to the heartbeat timeout, the run would take
    # five minutes and this test time out.
    proc = start_cli(
        [
            "-v",
            "--log-file",
            log,
            "run",
            JOBS / "slow_words.py",
            tmp_path / "corpus",
            "-o",
            out,
            "-w",
            2,
            "-r",
            2,
            "-q",
            "--heartbeat-interval",
            "0.1",
            "--liveness",
            "3000",
        ],
        env={"MARKER_DIR": str(markers)},
    )
    try:
        deadline = time.monotonic() + 30
        while not [m for m in markers.iterdir() if m.name.startswith("map-")]:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        executor = int(next(markers.glob("map-*")).name[4:])
        worker = next(parent for pid, parent, _ in live_processes() if pid == executor)
        assert worker in children_of(proc.pid)
        os.kill(worker, signal.SIGKILL)  # the worker running a map, mid-map
    finally:
        result = finish_cli(proc, timeout=60)
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    text = log.read_text()
    assert text.count("exited; its attempts run again elsewhere") == 1, text
    assert text.count("could not send to peer") <= 1, text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_coordinator_keeps_its_state_in_one_place_and_nothing_in_tmp(tmp_path, signum):
    temp, state = tmp_path / "tmp", tmp_path / "state"
    temp.mkdir()
    port = free_port()
    for _ in range(2):  # the same command twice: the same work directory, its journal reopened
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mapreduce.cli",
                "coordinator",
                "--bind",
                f"tcp://127.0.0.1:{port}",
            ],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "TMPDIR": str(temp), "XDG_STATE_HOME": str(state)},
            start_new_session=True,
        )
        try:
            line = proc.stderr.readline()
            work = state / "mapreduce" / f"coordinator-tcp-127.0.0.1-{port}"
            assert "listening on" in line and str(work) in line, line
            assert (work / "coordinator.journal").is_file()
            proc.send_signal(signum)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert list(temp.iterdir()) == []


def test_a_wildcard_port_needs_a_work_dir_of_its_own(tmp_path):
    result = run_cli(
        "coordinator", "--bind", "tcp://127.0.0.1:*", env={"XDG_STATE_HOME": str(tmp_path)}
    )
    assert result.returncode == 1 and "wildcard port" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []
