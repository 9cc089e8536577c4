"""The vectorised API (map_batches, REDUCE) end to end, against the per-record jobs and references."""

from __future__ import annotations

import collections
import hashlib
import re

import pytest

from helpers import (
    FAST,
    JOBS,
    ROOT,
    read_counts,
    reference_lines,
    run_cli,
    small_splits,
    write_corpus,
)


def test_vectorised_wordcount_output_is_byte_identical_to_the_per_record_one(corpus, tmp_path):
    digests = []
    for job in ("wordcount.py", "wordcount_arrow.py"):
        out = tmp_path / job
        result = run_cli(
            "run",
            ROOT / "jobs" / job,
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
        )
        assert result.returncode == 0, result.stderr
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()})
    assert digests[0] == digests[1]


@pytest.mark.parametrize("stat", ["sum", "min", "max"])
def test_arrow_aggregations_match_a_python_reference(corpus, tmp_path, stat):
    lengths = collections.defaultdict(list)
    for path in corpus:
        for word in re.findall(r"[A-Za-z]+", path.read_text().lower()):
            lengths[word[0]].append(len(word))
    expected = {
        letter: {"sum": sum, "min": min, "max": max}[stat](values)
        for letter, values in lengths.items()
    }
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "arrow_stats.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        2,
        *small_splits("2KB"),
        "-q",
        *FAST,
        env={"STAT": stat},
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == expected


def test_vectorised_map_with_a_python_reducer(corpus, tmp_path):
    expected = collections.defaultdict(set)
    for path in corpus:
        for line in reference_lines(path):
            for word in re.findall(r"[A-Za-z]+", line.lower()):
                expected[word].add(len(line))
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "arrow_python_reduce.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        2,
        *small_splits("3KB"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == {w: sorted(v) for w, v in expected.items()}


def test_map_batches_returning_something_else_fails_clearly(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=5)
    result = run_cli(
        "run",
        JOBS / "arrow_bad_output.py",
        *data,
        "-o",
        tmp_path / "out",
        "-w",
        2,
        "--max-attempts",
        1,
        *FAST,
    )
    assert result.returncode == 1
    assert "map_batches returned list" in result.stderr and "pyarrow.Table" in result.stderr
    assert not (tmp_path / "out").exists()


def test_reduce_without_map_batches_is_refused_at_load(tmp_path):
    data = write_corpus(tmp_path / "data", files=1, lines=5)
    result = run_cli(
        "run", JOBS / "reduce_without_batches.py", *data, "-o", tmp_path / "out", *FAST
    )
    assert result.returncode == 1 and "REDUCE goes with map_batches" in result.stderr


def test_identity_reduce_sorts_like_the_per_record_terasort(tmp_path):
    import random

    rng = random.Random(3)
    records = tmp_path / "records.txt"
    records.write_text(
        "".join(
            "".join(rng.choices([chr(c) for c in range(33, 127)], k=10)) + f"payload {n}\tx\n"
            for n in range(3000)
        )
    )
    digests = []
    for job in ("terasort.py", "terasort_arrow.py"):
        out = tmp_path / job
        result = run_cli(
            "run",
            ROOT / "jobs" / job,
            records,
            "-o",
            out,
            "-w",
            2,
            "-r",
            3,
            *small_splits("20KB"),
            "-q",
            *FAST,
        )
        assert result.returncode == 0, result.stderr
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()})
    assert digests[0] == digests[1]
    lines = [
        line
        for part in sorted((tmp_path / "terasort_arrow.py").glob("part-*"))
        for line in part.read_text().splitlines()
    ]
    assert len(lines) == 3000 and [line[:10] for line in lines] == sorted(
        line[:10] for line in lines
    )


def test_vectorised_wordcount_agrees_on_unicode_that_lowercases_to_ascii(tmp_path):
    # U+0130 lower-cases to "i" + a combining dot and the Kelvin sign to "k": both become a-z
    # letters only after lower(), which the byte-level tokenizer must honour like re.findall.
    text = (
        "İstanbul \u212aelvin café naïve ÀBC Straße ǅemal x\r\n"
        "tab\there, dash-word; \U0001f600emoji\u00a0nbsp \ufeffbom\n"
        "\xff\xfe invalid bytes follow\n"
    ).encode("utf-8") + b"caf\xe9 \xc3 end\n"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "text.txt").write_bytes(text)
    outputs = []
    for job in ("wordcount.py", "wordcount_arrow.py"):
        out = tmp_path / job
        result = run_cli(
            "run", ROOT / "jobs" / job, tmp_path / "in", "-o", out, "-r", 1, "-q", *FAST
        )
        assert result.returncode == 0, result.stderr
        outputs.append((out / "part-00000").read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1]
    counts = dict(line.split("\t") for line in outputs[0].splitlines())
    assert counts["i"] == counts["stanbul"] == counts["kelvin"] == "1"


@pytest.mark.parametrize(
    "keys, arrow_type",
    [
        (["w%d" % i for i in range(300)] + ["", "é", "日本"], "large_string"),
        (list(range(-300, 300)) + [2**63 - 1], "int64"),
        ([0.5, -2.0, 1e300, 3.25], "float64"),
        ([True, False], "bool_"),
    ],
    ids=["str", "int", "float", "bool"],
)
def test_vectorised_keys_go_where_the_per_record_writer_sends_them(keys, arrow_type):
    import pyarrow as pa

    from mapreduce.shuffle import stable_partition
    from mapreduce.vectorized import partition_ids

    ids = partition_ids(pa.array(keys, getattr(pa, arrow_type)()), 7)
    assert ids.to_pylist() == [stable_partition(key, 7) for key in keys]


def test_a_partitioner_out_of_range_is_refused_naming_the_key():
    import pyarrow as pa

    from mapreduce.errors import RecordError
    from mapreduce.vectorized import partition_ids

    with pytest.raises(RecordError, match=r"partitioner returned 9 for key 'b'; .*range\(0, 3\)"):
        partition_ids(
            pa.array(["a", "b"], pa.large_string()), 3, lambda key, n: 0 if key == "a" else 9
        )
