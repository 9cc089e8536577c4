"""Streaming executables (Hadoop Streaming): shell commands and scripts written for Hadoop
Streaming as mapper, combiner and reducer, in worker processes, against a plain count."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import sys
import textwrap
import time

import pytest

from helpers import (
    FAST,
    JOBS,
    finish_cli,
    read_pairs,
    run_cli,
    small_splits,
    start_cli,
    write_corpus,
)
from mapreduce.errors import JobLoadError, TaskFailedError
from mapreduce.steps import load_steps
from mapreduce.testing import run_job

AWK_WORDS = "awk '{for (i = 1; i <= NF; i++) print tolower($i) \"\\t\" 1}'"
AWK_SUM = "awk -F'\\t' '{s[$1] += $2} END {for (k in s) print k \"\\t\" s[k]}'"


ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def split_counts(paths, ascii_only=True) -> dict:
    """Whitespace-separated words, lower-cased as awk and tr do (ASCII only), or as Python does."""
    counts = collections.Counter()
    for path in paths:
        text = path.read_text()
        counts.update((text.translate(ASCII_LOWER) if ascii_only else text.lower()).split())
    return dict(counts)


@pytest.fixture
def corpus_dir(tmp_path):
    paths = write_corpus(tmp_path / "corpus", files=4, lines=80)
    return tmp_path / "corpus", paths


def run_streaming(tmp_path, inputs, *options):
    out = tmp_path / "out"
    result = run_cli(
        "run", *options, inputs, "-o", out, "-w", 2, "-r", 3, *small_splits("4KB"), "-q", *FAST
    )
    return result, out


def test_awk_mapper_combiner_and_reducer(tmp_path, corpus_dir):
    inputs, paths = corpus_dir
    result, out = run_streaming(
        tmp_path,
        inputs,
        "--mapper-cmd",
        AWK_WORDS,
        "--combiner-cmd",
        AWK_SUM,
        "--reducer-cmd",
        AWK_SUM,
    )
    assert result.returncode == 0, result.stderr
    pairs = read_pairs(out, raw=True)
    assert {k: int(v) for k, v in pairs} == split_counts(paths)
    assert len(pairs) == len(split_counts(paths))  # each word in one partition, once


def test_sort_uniq_c_style_reducer_gets_sorted_lines(tmp_path, corpus_dir):
    inputs, paths = corpus_dir
    # Keys without a tab (empty values); the reducer counts adjacent equal lines, as
    # `sort | uniq -c` does: only right if a partition's lines arrive sorted.
    result, out = run_streaming(
        tmp_path,
        inputs,
        "--mapper-cmd",
        "tr -s ' ' '\\n' | tr 'A-Z' 'a-z' | awk NF",
        "--reducer-cmd",
        "uniq -c | awk '{print $2 \"\\t\" $1}'",
    )
    assert result.returncode == 0, result.stderr
    assert {k: int(v) for k, v in read_pairs(out, raw=True)} == split_counts(paths)


@pytest.mark.slow
def test_python_scripts_written_for_hadoop_streaming_run_unchanged(tmp_path, corpus_dir):
    inputs, paths = corpus_dir
    result, out = run_streaming(
        tmp_path,
        inputs,
        "--mapper-cmd",
        f"{sys.executable} {JOBS / 'streaming_mapper.py'}",
        "--reducer-cmd",
        f"{sys.executable} {JOBS / 'streaming_reducer.py'}",
    )
    assert result.returncode == 0, result.stderr
    counts = {k: int(v) for k, v in read_pairs(out, raw=True)}
    assert counts == split_counts(paths, ascii_only=False)


def test_a_command_that_fails_fails_the_attempt_with_its_stderr(tmp_path, corpus_dir):
    inputs, _ = corpus_dir
    result, out = run_streaming(
        tmp_path,
        inputs,
        "--mapper-cmd",
        "cat >/dev/null; echo 'no such dictionary: /words' >&2; exit 3",
        "--max-attempts",
        "2",
    )
    assert result.returncode == 1
    assert "failed 2 time(s)" in result.stderr
    assert "exited with status 3; the end of its stderr:" in result.stderr
    assert "no such dictionary: /words" in result.stderr
    assert not out.exists()


def test_job_module_commands_and_a_python_reducer(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(
        textwrap.dedent(
            f"""
            MAPPER_CMD = {AWK_WORDS!r}

            def reducer(word, counts):
                yield word, sum(int(c) for c in counts)
            """
        )
    )
    assert sorted(run_job(str(job), ["A b", "b c", "a"])) == [("a", 2), ("b", 2), ("c", 1)]


def test_a_line_without_a_tab_is_a_key_with_an_empty_value(tmp_path):
    job = tmp_path / "job.py"
    job.write_text("MAPPER_CMD = 'cat'\n")
    assert sorted(run_job(str(job), ["x y", "z\tw"], reducers=0)) == [("x y", ""), ("z", "w")]


def test_a_command_that_stops_reading_early_is_fine_if_it_exits_zero(tmp_path):
    job = tmp_path / "job.py"
    job.write_text("MAPPER_CMD = 'head -n 1'\n")
    lines = [f"line {i} " + "x" * 200 for i in range(3000)]
    assert run_job(str(job), lines, reducers=0, maps=1) == [("line 0 " + "x" * 200, "")]


@pytest.mark.parametrize(
    "source, message",
    [
        ("MAPPER_CMD = 'cat'\ndef mapper(k, v):\n    yield k, v\n", "sets MAPPER_CMD and also"),
        ("REDUCER_CMD = 'cat'\n", "but has no mapper"),
        ("MAPPER_CMD = ''\n", "must be a shell command"),
        ("MAPPER_CMD = 'cat'\nINPUT_FORMAT = 'jsonl'\n", "INPUT_FORMAT must be 'lines'"),
    ],
)
def test_streaming_settings_are_checked(tmp_path, source, message):
    job = tmp_path / "job.py"
    job.write_text(source)
    with pytest.raises(JobLoadError, match=message):
        load_steps(str(job))


def test_reducer_cmd_alone_on_the_command_line_is_refused(tmp_path):
    result = run_cli("run", "--reducer-cmd", "cat", "in", "-o", tmp_path / "out")
    assert result.returncode != 0 and "go with --mapper-cmd" in result.stderr


def test_inline_failure_names_the_command(tmp_path):
    job = tmp_path / "job.py"
    job.write_text("MAPPER_CMD = 'false'\n")
    with pytest.raises(TaskFailedError, match="the mapper command `false` exited with status 1"):
        run_job(str(job), ["a"], reducers=0)


def test_a_script_shipped_with_file_runs_from_the_task_directory(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(
        f"MAPPER_CMD = {sys.executable + ' streaming_mapper.py'!r}\n"
        f"REDUCER_CMD = {sys.executable + ' streaming_reducer.py'!r}\n"
    )
    scripts = [str(JOBS / "streaming_mapper.py"), str(JOBS / "streaming_reducer.py")]
    out = run_job(str(job), ["a b", "B c", "a"], files=scripts)
    assert sorted(out) == [("a", "2"), ("b", "2"), ("c", "1")]


def test_the_mapper_is_told_its_input_file_as_in_hadoop_streaming(tmp_path):
    # A reduce-side join's mapper tags lines by the file they come from, read from the
    # environment: one process per file, even when one map task reads several files.
    data = tmp_path / "data"
    data.mkdir()
    (data / "left.txt").write_text("1 a\n2 b\n")
    (data / "right.txt").write_text("1 x\n")
    out = tmp_path / "out"
    result = run_cli(
        "run",
        "--mapper-cmd",
        'awk -v f="$(basename "$mapreduce_map_input_file")" \'{print $1 "\\t" f ":" $2}\'',
        data,
        "-o",
        out,
        "-w",
        1,
        "-r",
        1,
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(read_pairs(out, raw=True)) == [
        ("1", "left.txt:a"),
        ("1", "right.txt:x"),
        ("2", "left.txt:b"),
    ]


def test_a_failing_reducer_command_is_named_without_hook_names(tmp_path):
    job = tmp_path / "job.py"
    job.write_text("MAPPER_CMD = 'cat'\nREDUCER_CMD = 'echo broken >&2; exit 4'\n")
    with pytest.raises(TaskFailedError) as caught:
        run_job(str(job), ["a"], reducers=1)
    message = str(caught.value)
    assert "the reducer command `echo broken >&2; exit 4` exited with status 4" in message
    assert "broken" in message and "reducer_final" not in message
    assert "Traceback" not in message


@pytest.mark.slow
def test_submit_runs_streaming_commands_on_a_cluster(tmp_path, corpus_dir, cluster):
    inputs, paths = corpus_dir
    cluster.start_coordinator()
    cluster.start_worker(processes=2)
    cluster.wait_for_workers(1)
    out = tmp_path / "out"
    result = run_cli(
        "submit",
        "--mapper-cmd",
        AWK_WORDS,
        "--reducer-cmd",
        AWK_SUM,
        inputs,
        "--coordinator",
        cluster.address,
        "-o",
        out,
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert {k: int(v) for k, v in read_pairs(out, raw=True)} == split_counts(paths)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent is gone as far as work goes
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_command_that_ignores_its_input_dies_with_its_cancelled_attempt(tmp_path, cluster):
    """Ctrl-C on submit cancels the job; the workers kill the attempts' executors, and with them
    the streaming commands they started, even one that never reads its input or exits."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("one line\n")
    pids = tmp_path / "pids"
    cluster.start_coordinator()
    cluster.start_worker(processes=1)
    cluster.wait_for_workers(1)
    proc = start_cli(
        [
            "submit",
            "--mapper-cmd",
            f"echo $$ >> {pids}; exec sleep 600",
            tmp_path / "in",
            "-c",
            cluster.address,
            "-o",
            tmp_path / "out",
        ]
    )
    started = []
    try:
        deadline = time.monotonic() + 30
        while not started and time.monotonic() < deadline:
            time.sleep(0.05)
            if pids.exists():
                started = [int(line) for line in pids.read_text().split()]
        assert started, "the streaming command never started"
        assert _alive(started[0])
        os.kill(proc.pid, signal.SIGINT)
    finally:
        result = finish_cli(proc, timeout=30)
        try:
            deadline = time.monotonic() + 10
            while any(map(_alive, started)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not any(map(_alive, started)), "the command outlived its cancelled attempt"
        finally:
            for pid in started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert result.returncode == 130, result.stderr
    assert not (tmp_path / "out").exists()
