"""What user code prints goes to the task's log (output/_logs), not the terminal; --log-file."""

from __future__ import annotations

import json
import re

from helpers import FAST, JOBS, ROOT, run_cli, write_corpus
from mapreduce import commit


def test_prints_and_log_records_go_to_task_logs_not_the_terminal(tmp_path):
    data = write_corpus(tmp_path / "data", files=2, lines=20)
    out = tmp_path / "out"
    result = run_cli("run", JOBS / "printing.py", *data, "-o", out, "-w", 2, "-r", 2, *FAST)
    assert result.returncode == 0, result.stderr
    assert "mapper saw" not in result.stdout + result.stderr
    assert "reducing" not in result.stdout + result.stderr
    logs = {p.name: p.read_text() for p in (out / "_logs").iterdir()}
    assert any(
        name.startswith("map-") and "mapper saw:" in text and "warning from the mapper" in text
        for name, text in logs.items()
    )
    assert any(name.startswith("reduce-") and "reducing" in text for name, text in logs.items())


def test_a_failed_tasks_output_is_shown_with_its_error(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=5)
    result = run_cli(
        "run",
        JOBS / "printing.py",
        *data,
        "-o",
        tmp_path / "out",
        "-w",
        2,
        "--max-attempts",
        1,
        *FAST,
        env={"FAIL": "1"},
    )
    assert result.returncode == 1
    assert "What the last attempt printed" in result.stderr and "reducing" in result.stderr
    assert not (tmp_path / "out").exists()


def test_jobs_that_print_nothing_leave_no_logs_directory(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=5)
    out = tmp_path / "out"
    assert run_cli("run", JOBS / "lines_identity.py", *data, "-o", out, "-q", *FAST).returncode == 0
    assert not (out / "_logs").exists()


def test_log_file_receives_the_framework_log(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=5)
    log = tmp_path / "mapreduce.log"
    markers = tmp_path / "m"
    markers.mkdir()
    result = run_cli(
        "--log-file",
        log,
        "-v",
        "run",
        JOBS / "always_raises.py",
        *data,
        "-o",
        tmp_path / "out",
        "--max-attempts",
        2,
        *FAST,
        env={"MARKER_DIR": str(markers)},
    )
    assert result.returncode == 1
    text = log.read_text()
    assert "map-00000 attempt 1" in text and "mapreduce.coordinator" in text


def test_verbose_log_names_each_attempt_its_worker_and_runtime(tmp_path):
    data = write_corpus(tmp_path / "data", files=2, lines=50)
    log = tmp_path / "mapreduce.log"
    result = run_cli(
        "--log-file",
        log,
        "-v",
        "run",
        ROOT / "jobs/wordcount.py",
        *data,
        "-o",
        tmp_path / "out",
        "-w",
        2,
        "-r",
        2,
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    for task in ("map-00000", "reduce-00000", "reduce-00001"):
        assert re.search(rf"{task} attempt 1 assigned to \S+", text), text
        assert re.search(rf"{task} attempt 1 on \S+ done in \d+\.\d\d s", text), text
    assert re.search(r"succeeded in \d+\.\d\d s", text), text


def test_log_format_json_writes_one_object_per_line_naming_each_attempt(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=5)  # one map task
    log = tmp_path / "mapreduce.log"
    markers = tmp_path / "m"
    markers.mkdir()
    result = run_cli(
        "--log-file",
        log,
        "--log-format",
        "json",
        "-v",
        "run",
        JOBS / "always_raises.py",
        *data,
        "-o",
        tmp_path / "out",
        "-w",
        2,
        "--max-attempts",
        2,
        *FAST,
        env={"MARKER_DIR": str(markers)},
    )
    assert result.returncode == 1
    entries = [json.loads(line) for line in log.read_text().splitlines()]  # every line parses
    keys = ["time", "level", "logger", "job", "task", "attempt", "worker", "message"]
    assert entries and all(list(entry) == keys for entry in entries)
    about_attempts = [
        e
        for e in entries
        if e["logger"] == "mapreduce.coordinator" and re.search(r" attempt \d", e["message"])
    ]
    failed = [e for e in about_attempts if "failed" in e["message"]]
    assigned = [e for e in about_attempts if "assigned to" in e["message"]]
    assert len(failed) == 2 and len(assigned) == 2, about_attempts
    workers = {e["worker"] for e in assigned}
    for entry in about_attempts:
        assert entry["job"] and entry["task"] == "map-00000" and entry["attempt"] in (1, 2)
        assert entry["worker"] in workers, entry
        assert f"{entry['job']} map-00000 attempt {entry['attempt']}" in entry["message"]
    assert all("marked message 7f3a" in e["message"] for e in failed)
    ended = [e for e in entries if e["message"].endswith("s") and " failed in " in e["message"]]
    assert ended and ended[0]["job"] == failed[0]["job"] and ended[0]["task"] is None
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["time"]) for e in entries)


def test_a_killed_attempts_empty_log_is_not_committed_but_a_printed_one_is(tmp_path):
    """An attempt killed before its log could be removed (a losing backup, a cancel, an executor
    that died) leaves an empty file in staging's _logs: the commit drops it, and drops the
    directory with it when no attempt printed anything; a log that holds output stays."""
    for printed in (False, True):
        staging, out = tmp_path / f".out{printed}.mapreduce-x", tmp_path / f"out{printed}"
        (staging / commit.ATTEMPTS_DIR).mkdir(parents=True)
        (staging / "part-00000").write_text("a\t1\n")
        (staging / commit.LOGS_DIR).mkdir()
        (staging / commit.LOGS_DIR / "map-00004-a1.log").write_text("")
        if printed:
            (staging / commit.LOGS_DIR / "map-00001-a2.log").write_text("hello\n")
        commit.commit_job(str(staging), str(out))
        names = sorted(p.name for p in out.iterdir())
        if printed:
            assert names == ["_SUCCESS", "_logs", "part-00000"]
            assert [p.name for p in (out / "_logs").iterdir()] == ["map-00001-a2.log"]
        else:
            assert names == ["_SUCCESS", "part-00000"]
