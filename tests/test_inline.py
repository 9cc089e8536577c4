"""`run --inline`: one process, same output, pdb works, failures stop the job cleanly."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from helpers import FAST, JOBS, ROOT, read_counts, run_cli, small_splits, wordcount_reference


def digests(out):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}


@pytest.mark.parametrize(
    "job, env",
    [
        ("jobs/wordcount.py", {}),
        ("jobs/grep.py", {"GREP_PATTERN": "river"}),
        ("jobs/wordcount_arrow.py", {}),
    ],
)
def test_inline_output_is_byte_identical_to_a_normal_run(corpus, tmp_path, job, env):
    runs = []
    for mode in ([], ["--inline"]):
        out = tmp_path / f"out{len(runs)}"
        result = run_cli(
            "run",
            ROOT / job,
            tmp_path / "corpus",
            "-o",
            out,
            "-w",
            2,
            "-r",
            3,
            *small_splits("3KB"),
            "-q",
            *mode,
            *FAST,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        runs.append(digests(out))
    assert runs[0] == runs[1]


def test_inline_failure_names_the_task_and_leaves_nothing(tmp_path, corpus):
    result = run_cli(
        "run",
        JOBS / "always_raises.py",
        tmp_path / "corpus",
        "-o",
        tmp_path / "out",
        "--inline",
        *FAST,
    )
    assert result.returncode == 1
    assert "map task 0" in result.stderr and "always raises: marked message" in result.stderr
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_breakpoint_works_in_inline_mode(corpus, tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "mapreduce.cli",
            "run",
            str(JOBS / "with_breakpoint.py"),
            str(tmp_path / "corpus"),
            "-o",
            str(out),
            "--inline",
            "-q",
        ],
        input="p marker\nc\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert process.returncode == 0, process.stderr
    assert "(Pdb)" in process.stdout and "inside-the-debugger" in process.stdout
    assert read_counts(out) == wordcount_reference(corpus)
