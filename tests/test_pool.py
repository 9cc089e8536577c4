"""The local pool's workers: forked from `mapreduce run` when that is safe, and then made like the
`python -m mapreduce.worker` processes it starts otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import ROOT, read_counts, read_pairs, run_cli, wordcount_reference, write_corpus

WORKER_VIEW = ROOT / "tests" / "jobs" / "worker_view.py"
SLOW_SETUP = ROOT / "tests" / "jobs" / "slow_setup.py"


def test_run_forks_its_workers_and_they_look_like_started_ones(tmp_path):
    """The installed `mapreduce` command (its sys.path[0] is its bin directory, not the current
    one) forks its workers; each still sees what a started worker would: no MAPREDUCE_<SETTING>
    of the user's but the log format, the current directory first on sys.path, /dev/null for
    stdin."""
    (tmp_path / "in.txt").write_text("one line\nanother\n")
    command = Path(sys.executable).parent / "mapreduce"
    result = subprocess.run(
        [
            command,
            "run",
            WORKER_VIEW,
            tmp_path / "in.txt",
            "-o",
            tmp_path / "out",
            "--workers",
            "2",
        ],
        cwd=tmp_path,
        env={**_clean_environment(), "MAPREDUCE_REDUCERS": "1", "MAPREDUCE_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert dict(read_pairs(tmp_path / "out")) == {
        "started as python -m mapreduce.worker": "False",
        "MAPREDUCE_REDUCERS": "unset",
        "MAPREDUCE_LOG_FORMAT": "json",
        "sys.path[0] is the current directory": "True",
        "stdin": "/dev/null",
    }


def test_workers_waiting_for_a_long_planning_are_answered(tmp_path):
    """The workers start before the job is loaded and planned: while its setup() runs for 1.5 s,
    five times the workers' 0.3 s of allowed silence, the coordinator still answers them, so
    none reports it silent and reconnects."""
    corpus = write_corpus(tmp_path / "in", files=2, lines=50)
    result = run_cli(
        "run", SLOW_SETUP, *corpus, "-o", tmp_path / "out", "--workers", "2",
        "--heartbeat-interval", "100ms", "--liveness", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "silent" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    assert read_counts(tmp_path / "out") == wordcount_reference(corpus)


def test_a_process_with_threads_is_not_forked():
    """pyarrow's jemalloc thread is fork-safe (its own fork handlers); any other thread is not."""
    code = (
        "import threading, time\n"
        "import pyarrow\n"
        "from mapreduce.worker.pool import can_fork\n"
        "print(can_fork())\n"
        "threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
        "print(can_fork())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def _clean_environment() -> dict:
    import os

    return {name: value for name, value in os.environ.items() if not name.startswith("MAPREDUCE_")}
