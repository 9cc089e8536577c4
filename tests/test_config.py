"""The configuration file and MAPREDUCE_<SETTING> variables: where the file is found, the
precedence of command line > environment > file > default, `config show`, and the mistakes that
stop a command before it runs (exit status 2, one paragraph)."""

from __future__ import annotations

import json
import os
import re

import pytest
from click.testing import CliRunner

from helpers import FAST, ROOT, part_files, read_counts, run_cli, wordcount_reference
from mapreduce import config, defaults
from mapreduce.cli import main
from mapreduce.config import CONFIG_ENV
from mapreduce.logconfig import LOG_FILE_ENV
from mapreduce.worker.pool import SECRET_ENV

WORDCOUNT = ROOT / "jobs" / "wordcount.py"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No configuration but the test's own: a fresh working directory and XDG_CONFIG_HOME, and no
    MAPREDUCE_* variable from outside (real processes inherit this environment too)."""
    for name in list(os.environ):
        if name.startswith("MAPREDUCE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def show(*args, env=None) -> dict:
    """`mapreduce [ARGS] config show --json` in this process: {section: {key: setting}}."""
    result = CliRunner().invoke(main, [*args, "config", "show", "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def show_command(command: list, env=None) -> dict:
    result = CliRunner().invoke(main, ["config", "show", "--json", *command], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["sections"]


def test_precedence_command_line_over_environment_over_file_over_default(isolated):
    """A run option (reducers) and a coordinator tunable that was a constant (finished jobs
    kept), through all four layers."""
    run = ["run", "jobs/x.py", "in", "-o", "out"]
    coordinator = ["coordinator"]
    assert show_command(run)["run"]["reducers"] == {"value": None, "source": "default", "where": ""}
    assert show_command(coordinator)["coordinator"]["finished_jobs_kept"] == {
        "value": defaults.FINISHED_JOBS_KEPT,
        "source": "default",
        "where": "",
    }
    config = isolated / "mapreduce.yaml"
    config.write_text("reducers: 3\ncoordinator:\n  finished_jobs_kept: 7\n")
    assert show_command(run)["run"]["reducers"] == {
        "value": 3,
        "source": "file",
        "where": f"{config} (top level)",
    }
    assert show_command(coordinator)["coordinator"]["finished_jobs_kept"] == {
        "value": 7,
        "source": "file",
        "where": f"{config} (coordinator:)",
    }
    env = {"MAPREDUCE_REDUCERS": "2", "MAPREDUCE_FINISHED_JOBS_KEPT": "9"}
    assert show_command(run, env)["run"]["reducers"] == {
        "value": 2,
        "source": "environment",
        "where": "MAPREDUCE_REDUCERS",
    }
    assert show_command(coordinator, env)["coordinator"]["finished_jobs_kept"] == {
        "value": 9,
        "source": "environment",
        "where": "MAPREDUCE_FINISHED_JOBS_KEPT",
    }
    assert show_command([*run, "-r", "1"], env)["run"]["reducers"] == {
        "value": 1,
        "source": "command line",
        "where": "",
    }
    assert show_command([*coordinator, "--finished-jobs-kept", "11"], env)["coordinator"][
        "finished_jobs_kept"
    ] == {"value": 11, "source": "command line", "where": ""}


def test_a_section_wins_over_the_top_level_and_sizes_and_durations_are_read(isolated):
    (isolated / "mapreduce.yaml").write_text(
        "heartbeat_interval: 500ms\nsort_buffer: 16MiB\n"
        "run:\n  heartbeat_interval: 2s\n  backup_after: 1m\n"
        "submit:\n  param: {min_count: 3}\n  file: [a.txt, b.txt]\n"
    )
    sections = show()["sections"]
    assert sections["run"]["heartbeat_interval"]["value"] == 2.0
    assert sections["run"]["backup_after"]["value"] == 60.0
    assert sections["coordinator"]["heartbeat_interval"]["value"] == 0.5
    assert sections["worker"]["heartbeat_interval"]["value"] == 0.5
    assert sections["run"]["sort_buffer"]["value"] == sections["submit"]["sort_buffer"]["value"]
    assert sections["submit"]["sort_buffer"]["value"] == 16 * 1024 * 1024
    assert sections["submit"]["param"]["value"] == {"min_count": "3"}
    assert sections["submit"]["file"]["value"] == ["a.txt", "b.txt"]
    assert "sort_buffer" not in sections["status"]  # only the commands that have the option


def test_a_run_takes_its_settings_from_the_file_environment_and_command_line(isolated, tmp_path):
    """Split size and reducers from the file change the run's map tasks and part files; the
    environment wins over the file, and so does the command line; the counts stay right. The
    run's own workers ignore MAPREDUCE_ELECT (meant, say, for `submit`): it would send them to
    an etcd that is not there."""
    text = tmp_path / "input.txt"
    words = ["river", "salt", "light", "keeper", "bread", "north", "quay", "zebra"]
    text.write_text(
        "".join(f"{words[i % 8]} {words[(i * 7) % 8]} {words[(i * 3) % 5]}\n" for i in range(12000))
    )
    expected = wordcount_reference([text])
    size = text.stat().st_size
    (isolated / "mapreduce.yaml").write_text(
        "run:\n  reducers: 3\n  split_size: 16KiB\n  min_split_size: 1KiB\n  workers: 2\n"
        "  heartbeat_interval: 100ms\n  liveness: 5\n"
    )
    first = run_cli("run", WORDCOUNT, text, "-o", tmp_path / "a", cwd=isolated)
    assert first.returncode == 0, first.stderr
    maps = int(re.search(r"(\d+) map tasks", first.stderr).group(1))
    # Without the file: one map task (the input is below 1 MiB, the least split when spreading).
    assert maps >= size // (16 * 1024) > 1
    assert "3 reduce tasks" in first.stderr
    assert len(part_files(tmp_path / "a")) == 3
    assert read_counts(tmp_path / "a") == expected

    env = {"MAPREDUCE_REDUCERS": "2", "MAPREDUCE_ELECT": "etcd://127.0.0.1:9"}
    second = run_cli(
        "run", WORDCOUNT, text, "-o", tmp_path / "b", "--split-size", "64KiB", env=env, cwd=isolated
    )
    assert second.returncode == 0, second.stderr
    fewer = int(re.search(r"(\d+) map tasks", second.stderr).group(1))
    assert size // (64 * 1024) <= fewer < maps
    assert len(part_files(tmp_path / "b")) == 2
    assert read_counts(tmp_path / "b") == expected


def test_where_the_file_is_found(isolated, tmp_path, monkeypatch):
    """--config, else $MAPREDUCE_CONFIG, else ./mapreduce.yaml, else $XDG_CONFIG_HOME's; JSON too."""
    assert show()["file"] is None
    user = tmp_path / "xdg" / "mapreduce" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("run:\n  workers: 5\n")
    assert show()["file"] == str(user)
    assert show()["sections"]["run"]["workers"]["value"] == 5
    local = isolated / "mapreduce.yaml"
    local.write_text("run:\n  workers: 6\n")
    assert show()["sections"]["run"]["workers"] == {
        "value": 6,
        "source": "file",
        "where": f"{local} (run:)",
    }
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"run": {"workers": 7}, "timeout": "10s"}))
    by_env = show(env={"MAPREDUCE_CONFIG": str(named)})
    assert by_env["file"] == str(named)
    assert by_env["sections"]["run"]["workers"]["value"] == 7
    assert by_env["sections"]["status"]["timeout"]["value"] == 10.0
    other = tmp_path / "other.yaml"
    other.write_text("run:\n  workers: 8\n")
    by_option = show("--config", str(other), env={"MAPREDUCE_CONFIG": str(named)})
    assert by_option["sections"]["run"]["workers"]["value"] == 8


def test_config_show_prints_each_setting_and_its_source(isolated):
    (isolated / "mapreduce.yaml").write_text("coordinator:\n  backup_slowdown: 4\n")
    # A real process: --log-file configures this process's logging and environment.
    result = run_cli(
        "--log-file", "x.log", "config", "show", env={"MAPREDUCE_LIVENESS": "6"}, cwd=isolated
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"configuration file: {isolated / 'mapreduce.yaml'}"
    assert '  log_file = "x.log"  (command line)' in lines
    assert f"  backup_slowdown = 4.0  (file {isolated / 'mapreduce.yaml'} (coordinator:))" in lines
    assert "  liveness = 6  (environment MAPREDUCE_LIVENESS)" in lines
    assert f"  max_attempts = {defaults.MAX_ATTEMPTS}  (default)" in lines
    assert f"  sort_buffer = {defaults.SORT_BUFFER_BYTES} (64 MiB)  (default)" in lines
    sections = [line for line in lines if line.startswith("[")]
    assert sections == ["[mapreduce]", "[run]", "[coordinator]", "[submit]", "[status]", "[worker]"]


def test_config_show_says_a_token_is_set_without_printing_it(isolated):
    (isolated / "mapreduce.yaml").write_text("coordinator:\n  http_token: s3cr3t-value\n")
    result = run_cli("config", "show", "--json", cwd=isolated)
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-value" not in result.stdout
    shown = json.loads(result.stdout)["sections"]["coordinator"]["http_token"]
    assert shown["value"] == config.HIDDEN and shown["source"] == "file"


@pytest.mark.parametrize(
    "content, words",
    [
        (
            "run:\n  wrokers: 4\n",
            ["unknown key 'run.wrokers'", "did you mean 'workers'?", "under 'run:'", "reducers"],
        ),
        ("reducer: 2\n", ["unknown key 'reducer'", "did you mean 'reducers'?", "coordinator"]),
        (
            "run:\n  finished_jobs_kept: 5\n",
            [
                "'run.finished_jobs_kept' ('finished_jobs_kept' is a setting of coordinator, not of run)"
            ],
        ),
        ("run:\n  workers: four\n", ["'run.workers'", "'four'", "--workers"]),
        ("run:\n  workers: 2.5\n", ["'run.workers'", "whole number"]),
        ("run:\n  overwrite: 1\n", ["'run.overwrite'", "true or false"]),
        ("run:\n  sort_buffer: 12QB\n", ["'run.sort_buffer'", "invalid size '12QB'"]),
        ("heartbeat_interval: soon\n", ["'heartbeat_interval'", "invalid duration 'soon'"]),
        ("run:\n  workers: [2\n  reducers: 3\n", ["line 3", "not valid YAML"]),
        ("run: 4\n", ["'run' is the section of `mapreduce run`"]),
        ("insecure: true\n", ["'insecure' cannot be set in a file", "--insecure"]),
        ("submit:\n  insecure: true\n", ["'submit.insecure' cannot be set in a file"]),
    ],
)
def test_a_mistake_in_the_file_stops_the_command_before_it_runs(isolated, tmp_path, content, words):
    config = isolated / "mapreduce.yaml"
    config.write_text(content)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(WORDCOUNT), str(ROOT / "datasets"), "-o", str(out)]
    )
    assert result.exit_code == 2, result.output
    paragraph = result.stderr.strip()
    assert paragraph.startswith(f"mapreduce: error: configuration file '{config}'"), paragraph
    assert "\n" not in paragraph and "Traceback" not in paragraph
    for word in words:
        assert word in paragraph
    assert not out.exists()


def test_a_bad_environment_value_or_missing_file_is_a_usage_error(isolated, tmp_path):
    out = tmp_path / "out"
    args = ["run", str(WORDCOUNT), str(ROOT / "datasets"), "-o", str(out)]
    bad = CliRunner().invoke(main, args, env={"MAPREDUCE_SPLIT_SIZE": "huge"})
    assert bad.exit_code == 2
    assert "environment variable MAPREDUCE_SPLIT_SIZE='huge'" in bad.stderr
    assert "invalid size 'huge'" in bad.stderr
    missing = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.yaml"), *args])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "run": {"workers": 2,}\n}\n')
    result = CliRunner().invoke(main, args, env={"MAPREDUCE_CONFIG": str(broken)})
    assert result.exit_code == 2 and "line 2: not valid JSON" in result.stderr
    assert not out.exists()
    # --insecure turns keys off: a variable may not do it behind the user's back.
    open_mode = CliRunner().invoke(main, args, env={"MAPREDUCE_INSECURE": "1"})
    assert open_mode.exit_code == 2 and "MAPREDUCE_INSECURE is set" in open_mode.stderr
    typo = CliRunner().invoke(main, ["config", "show", "rn"])
    assert typo.exit_code == 2 and "did you mean 'run'?" in typo.stderr


def test_a_real_command_with_a_bad_file_exits_2_and_writes_nothing(isolated, tmp_path):
    (isolated / "mapreduce.yaml").write_text("run:\n  reducers: 2\n  output_fromat: jsonl\n")
    result = run_cli(
        "run", WORDCOUNT, ROOT / "datasets" / "sample", "-o", tmp_path / "out", *FAST, cwd=isolated
    )
    assert result.returncode == 2
    assert "did you mean 'output_format'?" in result.stderr
    assert not (tmp_path / "out").exists() and not result.leftover


def test_every_option_is_a_setting_with_its_variable():
    """Generic over the commands' options: each has MAPREDUCE_<ITS LONG NAME>, and no two options
    of one name have different variables."""
    seen = {"--log-file": next(p.envvar for p in main.params if p.name == "log_file")}
    for name, command in main.commands.items():
        if name in ("config", "keys"):
            continue
        for param in command.params:
            if getattr(param, "hidden", False) or not param.opts[0].startswith("-"):
                continue
            if param.name == "help":
                continue
            if param.name == "insecure":  # command line only (test below)
                assert param.envvar is None
                continue
            long = max((o for o in param.opts if o.startswith("--")), key=len)
            assert param.envvar == "MAPREDUCE_" + long[2:].replace("-", "_").upper()
            assert seen.setdefault(long, param.envvar) == param.envvar
    # The variables the framework itself passes to its processes: the same meaning, or none.
    assert seen["--log-file"] == LOG_FILE_ENV
    assert SECRET_ENV not in seen.values() and CONFIG_ENV not in seen.values()


def test_spill_records_travels_with_the_job_to_the_map_task(tmp_path):
    """A map-side tunable set for the job reaches the writer in the worker: fewer records per
    spill, more sorted runs, the same pairs."""
    from mapreduce.inputs import expand_inputs, plan_splits
    from mapreduce.jobspec import Job
    from mapreduce.worker.map_task import run_map

    text = tmp_path / "in.txt"
    text.write_text("".join(f"w{i % 50} w{i % 7}\n" for i in range(2000)))
    job = Job("pairs", mapper=lambda key, line: ((word, 1) for word in line.split()))
    split = plan_splits(expand_inputs([str(text)]), "lines", None, min_splits=1)[0]
    runs = {}
    for spill in (defaults.SPILL_RECORDS, 500):
        task = {
            "split": split.to_wire(),
            "out_dir": str(tmp_path / f"out{spill}"),
            "partitions": 1,
            "spill_records": spill,
            "sort_buffer": defaults.SORT_BUFFER_BYTES,
        }
        result = run_map(job, task)
        runs[spill] = len(result["files"]["0"])
        assert result["counters"]["map_output_records"] == 4000
    assert runs[defaults.SPILL_RECORDS] == 1 and runs[500] > 1
