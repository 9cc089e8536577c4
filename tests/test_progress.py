"""Progress on a terminal: the live line appears on a pseudo-terminal, and never in a pipe."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from helpers import FAST, JOBS, kill_group, small_splits, write_corpus
from mapreduce.progress import ProgressReporter


def test_progress_line_is_shown_on_a_terminal(tmp_path):
    write_corpus(tmp_path / "corpus", files=4, lines=150)
    markers = tmp_path / "markers"
    markers.mkdir()
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mapreduce.cli",
            "run",
            str(JOBS / "slow_words.py"),
            str(tmp_path / "corpus"),
            "-o",
            str(tmp_path / "out"),
            "-w",
            "2",
            *small_splits("2KB"),
            *FAST,
        ],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
        env={**os.environ, "MARKER_DIR": str(markers)},
    )
    os.close(follower)
    screen = b""
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        kill_group(proc.pid)
        os.close(leader)
    text = screen.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "\rmap " in text and "reduce " in text  # the live line, redrawn in place
    assert "done in" in text and "output: " in text


@pytest.mark.parametrize(
    "counts, shown",
    [
        ({"maps": 1, "attempts": 1}, "1 map task, 1 attempt"),
        (
            {"attempts": 7, "failed": 1, "lost": 2, "backups": 1},
            "7 attempts (1 failed, 2 lost, 1 backup)",
        ),
        ({"attempts": 9, "backups": 2}, "9 attempts (2 backups)"),
    ],
)
def test_summary_counts_read_as_english(counts, shown):
    snapshot = {
        "maps": 4,
        "reduces": 0,
        "attempts": 4,
        "failed": 0,
        "lost": 0,
        "backups": 0,
        "elapsed": 1.0,
        **counts,
    }
    stream = io.StringIO()
    ProgressReporter(stream=stream).summary(snapshot, {}, "out")
    assert stream.getvalue().splitlines()[0].endswith(shown), stream.getvalue()
