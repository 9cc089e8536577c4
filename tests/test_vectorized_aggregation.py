"""The vectorised path's Arrow aggregation and the vectorised word count's tokenizer, in one
process, against plain Python references (collections.Counter, the per-record job's mapper)."""

from __future__ import annotations

import collections
import random
import runpy

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from helpers import ROOT
from mapreduce import vectorized
from mapreduce.errors import RecordError

WORDCOUNT = runpy.run_path(str(ROOT / "jobs" / "wordcount.py"))
WORDCOUNT_ARROW = runpy.run_path(str(ROOT / "jobs" / "wordcount_arrow.py"))


def _long_tail_words(count: int, seed: int) -> list:
    rng = random.Random(seed)
    return [f"w{int(rng.paretovariate(1.1))}" for _ in range(count)]


def test_counting_in_cache_sized_slices_and_folding_gives_the_counts_of_counter(monkeypatch):
    # Tiny slices and folds, so a key is counted in many slices and folded many times (by Arrow,
    # as where the C KeyCounter is not built: tests/test_key_counter.py tests that one).
    monkeypatch.setattr(vectorized, "str_counter", None)
    monkeypatch.setattr(vectorized, "COUNT_SLICE_ROWS", 16)
    monkeypatch.setattr(vectorized, "PARTIAL_ROWS", 40)
    words = _long_tail_words(3000, seed=5) + ["", "é", "日本"] * 7
    aggregator = vectorized.BatchAggregator("count")
    for start in range(0, len(words), 101):
        chunks = [words[start : start + 50], words[start + 50 : start + 101]]
        keys = pa.chunked_array([pa.array(chunk, pa.large_string()) for chunk in chunks])
        aggregator.add(pa.table({"key": keys}))
    result = aggregator.result()
    assert result is not None and len(aggregator.partials) == 1
    keys = result.column("key").to_pylist()
    assert len(keys) == len(set(keys))  # one row per key
    assert dict(zip(keys, result.column("value").to_pylist())) == collections.Counter(words)


@pytest.mark.parametrize("how", ["sum", "min", "max"])
def test_aggregations_by_key_match_python(monkeypatch, how):
    monkeypatch.setattr(vectorized, "PARTIAL_ROWS", 64)
    rng = random.Random(9)
    keys = _long_tail_words(2000, seed=6)
    values = [rng.randint(-1000, 1000) for _ in keys]
    aggregator = vectorized.BatchAggregator(how)
    for start in range(0, len(keys), 77):
        aggregator.add(
            pa.table(
                {
                    "key": pa.array(keys[start : start + 77], pa.large_string()),
                    "value": pa.array(values[start : start + 77], pa.int64()),
                }
            )
        )
    result = aggregator.result()
    assert result is not None
    grouped = collections.defaultdict(list)
    for key, value in zip(keys, values):
        grouped[key].append(value)
    expected = {key: {"sum": sum, "min": min, "max": max}[how](v) for key, v in grouped.items()}
    got = dict(zip(result.column("key").to_pylist(), result.column("value").to_pylist()))
    assert got == expected and result.num_rows == len(expected)


def test_the_reduce_side_combines_partial_counts_with_repeated_keys():
    partials = pa.table(
        {
            "key": pa.array(["b", "a", None, "b", "c", "a", None], pa.large_string()),
            "value": pa.array([1, 2, 3, 4, 5, 6, 7], pa.int64()),
        }
    )
    result = vectorized.aggregate(partials, "count")
    assert dict(zip(result.column("key").to_pylist(), result.column("value").to_pylist())) == {
        "a": 8,
        "b": 5,
        "c": 5,
        None: 10,
    }


LINES = {
    "ascii": ["The quick, brown FOX -- jumps!", "", "  don't  stop  ", "a1b2c3 x_y", "... --- !"],
    "other scripts": ["café naïve ÀBC Straße", "ǅemal \U0001f600emoji\u00a0nbsp", "日本 text"],
    "lower-cases to ascii": ["İstanbul \u212aelvin", "plain line", "ÀB İİ \u212a"],
}


@pytest.mark.parametrize("kind", sorted(LINES))
def test_the_arrow_tokenizer_gives_the_words_of_the_per_record_mapper(kind):
    lines = LINES[kind]
    batch = pa.record_batch(
        [pa.array(["f"] * len(lines), pa.large_string()), pa.array(lines, pa.large_string())],
        names=["key", "value"],
    )
    words = WORDCOUNT_ARROW["map_batches"](batch).column("key").to_pylist()
    assert words == [word for line in lines for word, _ in WORDCOUNT["mapper"]("f", line)]
    # A slice of a batch (an offset into its buffers) is tokenized as its own rows.
    sliced = WORDCOUNT_ARROW["map_batches"](batch.slice(1)).column("key").to_pylist()
    assert sliced == [word for line in lines[1:] for word, _ in WORDCOUNT["mapper"]("f", line)]
    empty = WORDCOUNT_ARROW["map_batches"](batch.slice(0, 0))
    assert empty.num_rows == 0


def test_a_jobs_partition_batches_places_every_key_and_bad_results_are_refused():
    keys = pa.array([f"k{i}" for i in range(50)], pa.large_string())

    def by_length(column, num_partitions):
        return pc.utf8_length(column).cast(pa.int64())  # "k0".."k9": 2, the rest: 3

    ids = vectorized.partition_ids(keys, 4, partition_batches=by_length)
    assert ids.type == pa.int32()
    assert ids.to_pylist() == [len(key) for key in keys.to_pylist()]
    for bad in (
        lambda column, n: [0] * len(column),  # not an Arrow array
        lambda column, n: pa.array([0] * (len(column) - 1)),  # one short
        lambda column, n: pa.array([0.5] * len(column)),  # not integers
        lambda column, n: pa.array([None] + [0] * (len(column) - 1), pa.int64()),  # a null
        lambda column, n: pa.array([n] * len(column)),  # out of range
    ):
        with pytest.raises(RecordError, match="partition"):
            vectorized.partition_ids(keys, 4, partition_batches=bad)


@pytest.mark.parametrize("summed_by", ["KeyCounter", "Arrow"])
def test_unsorted_partial_runs_reduce_to_the_counts_of_counter_in_key_order(
    tmp_path, monkeypatch, summed_by
):
    from mapreduce.shuffle import stable_partition

    if summed_by == "Arrow":  # as where the C extension is not built
        monkeypatch.setattr(vectorized, "str_counter", None)
    words = _long_tail_words(5000, seed=8)
    counts = collections.Counter(words)
    partial = pa.table(
        {
            "key": pa.array(list(counts), pa.large_string()),
            "value": pa.array(list(counts.values()), pa.int64()),
        }
    )
    spiller = vectorized.RunSpiller(str(tmp_path), 3, spill_records=100, sort_keys=False)
    for start in range(0, partial.num_rows, 70):
        spiller.add(partial.slice(start, 70))
    files, _, _, rows = spiller.close()
    assert rows == len(counts)
    seen: dict = {}
    for partition, paths in files.items():
        result = vectorized.reduce_runs(paths, "count")
        assert result is not None
        keys = result.column("key").to_pylist()
        assert keys == sorted(keys)
        assert {stable_partition(key, 3) for key in keys} == {partition}
        seen.update(zip(keys, result.column("value").to_pylist()))
    assert seen == counts


def test_string_keys_get_the_same_partitions_with_and_without_the_c_helper(monkeypatch):
    from mapreduce.shuffle import partition, stable_partition

    words = _long_tail_words(2000, seed=11) + ["", "é", "日本"]
    expected = [stable_partition(word, 5) for word in words]
    for key_type in (pa.large_string(), pa.large_binary()):
        keys = pa.array(words if key_type == pa.large_string() else [w.encode() for w in words])
        keys = keys.cast(key_type)
        assert vectorized.partition_ids(keys, 5).to_pylist() == expected
        with monkeypatch.context() as patch:
            patch.setattr(partition, "c_str_partitions", None)  # as where C is not built
            assert vectorized.partition_ids(keys, 5).to_pylist() == expected
