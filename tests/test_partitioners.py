"""The ready-made RangePartitioner and identity_reducer, which the framework runs in bulk, against
the per-key computations they replace; and the Arrow text writer they lead to."""

from __future__ import annotations

import random
from bisect import bisect_right

import pyarrow as pa
import pytest

from helpers import FAST, ROOT, run_cli, small_splits
from mapreduce import shuffle, vectorized
from mapreduce.errors import RecordError
from mapreduce.jobspec import Job
from mapreduce.output import PartWriter, format_record, format_table
from mapreduce.partitioners import RangePartitioner
from mapreduce.reducers import identity_reducer
from mapreduce.worker.reduce_task import run_reduce

WORDS = ["", "a", "b", "ba", "c", "m", "mm", "z", "zz", "é", "\x00", "\uffff", "~~~", "B"]


@pytest.mark.parametrize("points", [["b", "m", "z"], lambda n: ["c", "m", "zz"][: n - 1]])
def test_range_partitioner_places_keys_as_bisection_does(points):
    partitioner = RangePartitioner(points)
    expected = [
        bisect_right(["b", "m", "z"] if isinstance(points, list) else ["c", "m", "zz"], k)
        for k in WORDS
    ]
    assert partitioner.partitions(WORDS, 4) == expected
    assert [partitioner(key, 4) for key in WORDS] == expected
    assert shuffle.partitions_of(WORDS, 4, partitioner) == expected
    arrow_keys = pa.array(WORDS, pa.large_string())
    assert partitioner.partition_array(arrow_keys, 4).to_pylist() == expected
    assert vectorized.partition_ids(arrow_keys, 4, partitioner).to_pylist() == expected


def test_range_partitioner_on_int_and_bytes_keys_in_arrow_and_python():
    rng = random.Random(5)
    ints = [rng.randint(-1000, 1000) for _ in range(500)]
    by_int = RangePartitioner([-10, 0, 500])
    assert by_int.partition_array(pa.array(ints), 4).to_pylist() == [
        bisect_right([-10, 0, 500], k) for k in ints
    ]
    blobs = [bytes(rng.choices(range(256), k=3)) for _ in range(500)]
    by_bytes = RangePartitioner([b"\x40", b"\x80\x00"])
    assert by_bytes.partition_array(pa.array(blobs, pa.large_binary()), 3).to_pylist() == [
        bisect_right([b"\x40", b"\x80\x00"], k) for k in blobs
    ]
    # Split points Arrow cannot hold as the keys' type: Python's order decides.
    halves = RangePartitioner([0.5])
    assert halves.partition_array(pa.array([0, 1, 2]), 2).to_pylist() == [0, 1, 1]


def test_range_partitioner_refuses_unusable_split_points_in_one_sentence():
    with pytest.raises(RecordError, match="3 split points.*2 reducers"):
        RangePartitioner(["a", "b", "c"]).partitions(["x"], 2)
    with pytest.raises(RecordError, match="must be sorted"):
        RangePartitioner(["b", "a"]).partitions(["x"], 3)
    with pytest.raises(RecordError, match="cannot place a key"):
        RangePartitioner(["b"]).partitions(["x", 3], 2)


def _runs(tmp_path, partitions: int = 1, runs: int = 3, rows: int = 3000) -> list:
    """Sorted runs of str keys (many repeated) and str values, as map tasks write them."""
    rng = random.Random(11)
    (tmp_path / "runs").mkdir()
    writer = shuffle.RunWriter(str(tmp_path / "runs"))
    for _ in range(runs):
        keys = [rng.choice(WORDS[1:]) + str(rng.randint(0, 50)) for _ in range(rows)]
        writer.write_pairs(0, keys, [f"v{rng.random()}" for _ in keys])
    return writer.files[0]


def _reduce(tmp_path, name: str, reducer, inputs: list) -> tuple:
    task = {"out_dir": str(tmp_path / name), "partition": 0, "inputs": inputs}
    result = run_reduce(Job(name, mapper=lambda k, v: (), reducer=reducer), task)
    return (tmp_path / name / "part-00000").read_bytes(), result["counters"]


def test_identity_reducer_writes_what_a_python_identity_reducer_writes(tmp_path):
    def own_identity(key, values):  # the user's own function: the per-record path
        for value in values:
            yield key, value

    inputs = _runs(tmp_path)
    assert shuffle.natively_mergeable(inputs)
    fast, fast_counters = _reduce(tmp_path, "fast", identity_reducer, inputs)
    slow, slow_counters = _reduce(tmp_path, "slow", own_identity, inputs)
    assert fast == slow and fast_counters == slow_counters
    pairs = [line.split("\t") for line in fast.decode().splitlines()]
    assert len(pairs) == 9000 and [k for k, _ in pairs] == sorted(k for k, _ in pairs)
    assert fast_counters["reduce_input_groups"] == len({k for k, _ in pairs})


def test_identity_reducer_with_values_arrow_cannot_write_goes_per_record(tmp_path):
    (tmp_path / "runs").mkdir()
    writer = shuffle.RunWriter(str(tmp_path / "runs"))
    writer.write_pairs(0, ["b", "a", "a"], [(1, 2), {"x": 1}, None])
    assert not shuffle.natively_mergeable(writer.files[0])
    output, counters = _reduce(tmp_path, "out", identity_reducer, writer.files[0])
    expected = "".join(map(format_record, ["a", "a", "b"], [{"x": 1}, None, (1, 2)]))
    assert output.decode() == expected and counters["reduce_input_groups"] == 2


@pytest.mark.parametrize(
    "keys, values",
    [
        (pa.array(["a", "b", "é" * 3]), pa.array([1, 2, 3])),
        (pa.array(["a", "b\t", "c"]), pa.array(["x", "y", "z"])),
        (pa.array(["a", "b", "c"]).slice(1), pa.array(["x", "y\n", "z"]).slice(0, 2)),
        (pa.array(["a", "b", "c"]).slice(1), pa.array(["x", "y\r", "z"]).slice(1)),
        (pa.array(["a", "b"], pa.large_string()).slice(1), pa.array(["x\n", "y"]).slice(1)),
        (pa.chunked_array([pa.array(["q", "r"])]), pa.array([True, False])),
        (pa.array(["a", None]), pa.array([1, 2])),
        (pa.array(["", ""]), pa.array(["", ""])),
        (pa.array([1.5, 2.0]), pa.array(["a", "b"])),
    ],
)
def test_text_parts_from_arrow_columns_match_format_record(tmp_path, keys, values):
    expected = "".join(map(format_record, keys.to_pylist(), values.to_pylist()))
    assert format_table(keys, values) == expected
    writer = PartWriter(str(tmp_path), 0)
    writer.write("before", "x")
    writer.write_table(keys, values)
    writer.write("after", 1)
    writer.close()
    assert (tmp_path / "part-00000").read_text() == f"before\tx\n{expected}after\t1\n"


def test_batch_aggregator_folds_partials_to_the_counts_of_counter(monkeypatch):
    import collections

    monkeypatch.setattr(vectorized, "PARTIAL_ROWS", 50)
    rng = random.Random(2)
    words = [f"w{int(rng.paretovariate(1.2))}" for _ in range(2000)]
    aggregator = vectorized.BatchAggregator("count")
    for start in range(0, len(words), 37):
        aggregator.add(pa.table({"key": pa.array(words[start : start + 37], pa.large_string())}))
    result = aggregator.result()
    assert result is not None and len(aggregator.partials) == 1
    counts = dict(zip(result.column("key").to_pylist(), result.column("value").to_pylist()))
    assert counts == collections.Counter(words)


def test_terasort_with_the_ready_made_parts_equals_a_sequential_sort(tmp_path):
    rng = random.Random(4)
    lines = [
        "".join(rng.choices([chr(c) for c in range(33, 127)], k=10)) + f"payload{n}\n"
        for n in range(4000)
    ]
    records = tmp_path / "records.txt"
    records.write_text("".join(lines))
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs" / "terasort.py",
        records,
        "-o",
        out,
        "-w",
        2,
        "-r",
        4,
        *small_splits("40KB"),
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    parts = sorted(out.glob("part-*"))
    assert len(parts) == 4 and all(part.stat().st_size for part in parts)
    got = [
        line.replace("\t", "", 1) for part in parts for line in part.read_text().splitlines(True)
    ]
    assert got == sorted(lines)
