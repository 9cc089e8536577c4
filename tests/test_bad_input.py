"""Bad invocations: one readable paragraph, a non-zero exit, nothing created, no processes left."""

from __future__ import annotations

import types

import pytest

from helpers import FAST, JOBS, ROOT, run_cli, write_corpus

WORDCOUNT = str(ROOT / "jobs/wordcount.py")


@pytest.fixture
def data(tmp_path):
    return write_corpus(tmp_path / "data", files=2, lines=10)


CASES = {
    "missing input": (lambda t, d: [WORDCOUNT, t / "nope.txt"], "does not exist"),
    "glob matching nothing": (
        lambda t, d: [WORDCOUNT, str(t / "data" / "*.csv")],
        "matched no files",
    ),
    "missing job file": (lambda t, d: [t / "nojob.py", *d], "does not exist"),
    "missing job module": (lambda t, d: ["jobs.nosuchjob", *d], "not found"),
    "syntax error": (lambda t, d: [JOBS / "syntax_error.py", *d], "syntax error at line 4"),
    "no mapper": (lambda t, d: [JOBS / "no_mapper.py", *d], "defines no mapper"),
    "mapper yields non-pairs": (
        lambda t, d: [JOBS / "yields_nonpair.py", *d],
        "must yield (key, value) pairs",
    ),
    "unpicklable value": (lambda t, d: [JOBS / "yields_lambda.py", *d], "cannot be pickled"),
    "split size below the minimum": (
        lambda t, d: [WORDCOUNT, *d, "--split-size", "1"],
        "below the minimum split size of 64 KiB",
    ),
    "only binary inputs, skipped": (
        lambda t, d: [WORDCOUNT, _binary(t), "--skip-binary"],
        "every input file looks binary",
    ),
}


def _binary(directory):
    path = directory / "data.bin"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00" * 100)
    return path


@pytest.mark.parametrize("case", CASES)
def test_bad_invocation_gets_one_paragraph_and_no_output(tmp_path, data, case):
    make_args, expected = CASES[case]
    out = tmp_path / "out"
    result = run_cli(
        "run", *make_args(tmp_path, data), "-o", out, "-w", 2, "--max-attempts", 2, *FAST
    )
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert result.stderr.startswith("mapreduce: error: ")
    assert "mapreduce/" not in result.stderr and "site-packages" not in result.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert not result.leftover


def test_unpicklable_value_names_the_task_and_type(tmp_path, data):
    result = run_cli(
        "run",
        JOBS / "yields_lambda.py",
        *data,
        "-o",
        tmp_path / "out",
        "-w",
        2,
        "--max-attempts",
        1,
        *FAST,
    )
    assert "map task" in result.stderr and "function" in result.stderr


def test_submit_refuses_a_split_size_below_the_minimum_before_connecting(tmp_path, data):
    result = run_cli(
        "submit",
        WORDCOUNT,
        *data,
        "-o",
        tmp_path / "out",
        "-c",
        "tcp://127.0.0.1:9",
        "--split-size",
        "63KB",
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "mapreduce: error: --split-size 63 KiB is below the minimum split size of 64 KiB."
    ), result.stderr
    assert "--min-split-size" in result.stderr and not (tmp_path / "out").exists()


def test_a_required_parameter_not_given_is_refused_before_anything_runs(tmp_path, data):
    # grep's pattern defaults to $GREP_PATTERN, None when that is unset or empty: required.
    out = tmp_path / "out"
    result = run_cli(
        "run",
        WORDCOUNT.replace("wordcount", "grep"),
        *data,
        "-o",
        out,
        *FAST,
        env={"GREP_PATTERN": ""},
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"mapreduce: error: job '{WORDCOUNT.replace('wordcount', 'grep')}' needs a "
        f"value for its parameter 'pattern', which has no default (None in its "
        f"PARAMS): give it with --param pattern=VALUE on `mapreduce run` or "
        f"`submit`.\n"
    )
    assert not out.exists() and not result.leftover


def test_several_required_parameters_are_named_together(tmp_path):
    from mapreduce.errors import JobLoadError
    from mapreduce.jobspec import check_required_params

    module = types.SimpleNamespace(PARAMS={"a": None, "b": 3, "c": None})
    with pytest.raises(
        JobLoadError,
        match=r"parameters 'a' and 'c', which have no default .*give "
        r"them with --param a=VALUE --param c=VALUE",
    ):
        check_required_params(module, "job.py")
    check_required_params(types.SimpleNamespace(PARAMS={"a": 1}), "job.py")  # nothing missing


def test_missing_output_option_is_a_usage_error(data):
    result = run_cli("run", WORDCOUNT, *data)
    assert result.returncode == 2 and "--output" in result.stderr


def test_a_bad_pair_is_reported_with_the_line_that_yielded_it(tmp_path):
    # Pairs are checked a chunk at a time, after the mapper has moved on: the error must still
    # name the line whose record yielded the bad item, not the line being mapped at the time.
    lines = [f"word{i} other{i} more" for i in range(1, 3000)]
    lines[1233] = "before MARK after"
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "bad_pair_on_marked_line.py",
        tmp_path / "in.txt",
        "-o",
        out,
        "-w",
        1,
        "--max-attempts",
        1,
        *FAST,
    )
    assert result.returncode != 0
    assert "the mapper yielded 'MARK' of type str" in result.stderr, result.stderr
    assert f"{tmp_path / 'in.txt'}, line 1234" in result.stderr, result.stderr
    assert not out.exists()
    assert not result.leftover


def _cause(stderr: str) -> str:
    return stderr.split("the last attempt with: ", 1)[1].split(". No output was written", 1)[0]


@pytest.mark.parametrize("output_format", ["text", "jsonl", "parquet"])
@pytest.mark.parametrize("where", ["key", "value"])
def test_map_only_job_refuses_what_the_shuffle_cannot_pickle(tmp_path, where, output_format):
    # A map-only job writes its pairs without the shuffle; it used to write the lambda's repr
    # (a memory address: different in every run) where a job with a reducer is refused.
    data = tmp_path / "in.txt"
    data.write_text("first\nsecond\nthird\nfourth\n")
    reduced = run_cli(
        "run",
        JOBS / "yields_lambda.py",
        data,
        "-o",
        tmp_path / "reduced",
        "-w",
        1,
        "--max-attempts",
        1,
        *FAST,
    )
    assert reduced.returncode == 1
    cause = _cause(reduced.stderr)
    assert cause == (
        "a value of type function cannot be pickled: Can't pickle local object "
        "'mapper.<locals>.<lambda>'"
    )
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "map_only_yields_lambda.py",
        data,
        "-o",
        out,
        "-w",
        1,
        "--max-attempts",
        1,
        "--param",
        f"unpicklable={where}",
        "--output-format",
        output_format,
        *FAST,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("mapreduce: error: map task 0")
    assert _cause(result.stderr) == (
        cause.replace("a value", f"a {where}") + f" (while mapping {data}, line 3)"
    ), result.stderr
    assert "mapreduce/" not in result.stderr and "site-packages" not in result.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    assert not result.leftover
