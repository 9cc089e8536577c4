"""The C helpers of a vectorised count (mapreduce/_speedups_src/counter.c): KeyCounter's hash table
(str_counter) against collections.Counter, and a string column's stable partitions
(str_partitions) against stable_partition."""

from __future__ import annotations

import collections

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import speedups_missing
from mapreduce import vectorized
from mapreduce.shuffle import stable_partition, stable_partition_array

pytestmark = pytest.mark.skipif(bool(speedups_missing()), reason=speedups_missing())

# Keys around the table's 16-byte heads: equal heads with different tails, and NUL bytes that
# the zero padding of a short key's head must not confuse with its end.
TRICKY = ["", "\0", "a", "a\0", "abcdefg", "abcdefgh", "abcdefgh\0", "abcdefghi", "x" * 15]
TRICKY += ["x" * 16, "x" * 16 + "\0", "x" * 17, "x" * 16 + "y" * 9, "é"]
KEYS = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(TRICKY), st.none()), max_size=300)


def _arrow(keys: list, key_type: pa.DataType) -> pa.Array:
    if key_type == pa.large_binary():
        keys = [None if key is None else key.encode("utf-8", "surrogatepass") for key in keys]
    return pa.array(keys, key_type)


def _counted(table: pa.Table) -> dict:
    keys = table.column("key").to_pylist()
    assert len(keys) == len(set(keys))  # one row per key
    return dict(zip(keys, table.column("value").to_pylist()))


@settings(max_examples=300, deadline=None)
@given(KEYS, st.data())
def test_counts_equal_counters_in_the_order_keys_were_first_seen(words, data):
    key_type = data.draw(st.sampled_from([pa.large_string(), pa.large_binary()]))
    array = _arrow(words, key_type)
    counter = vectorized.KeyCounter(key_type)
    # Added in slices (an array's offset into its buffers) and as chunked arrays.
    cuts = sorted(data.draw(st.lists(st.integers(0, len(words)), max_size=4)))
    pieces = [array.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, len(words)])]
    if data.draw(st.booleans()):
        counter.add(pa.chunked_array(pieces, key_type))
    else:
        for piece in pieces:
            counter.add(piece)
    expected = collections.Counter(array.to_pylist())
    assert counter.distinct == len(expected)
    table = counter.counts()
    assert table.schema == pa.schema({"key": key_type, "value": pa.int64()})
    assert _counted(table) == expected
    first_seen = [key for key in dict.fromkeys(array.to_pylist()) if key is not None]
    assert [key for key in table.column("key").to_pylist() if key is not None] == first_seen
    assert counter.distinct == 0 and counter.counts().num_rows == 0  # emptied


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.sampled_from(TRICKY), st.none()), st.integers(-5, 2**31 - 1)))
)
def test_counts_added_with_values_are_summed(pairs):
    keys = pa.array([key for key, _ in pairs], pa.large_string())
    values = pa.array([value for _, value in pairs], pa.int64())
    counter = vectorized.KeyCounter(pa.large_string())
    half = len(pairs) // 2
    counter.add(keys.slice(0, half), values.slice(0, half))
    counter.add(keys.slice(half), values.slice(half).cast(pa.int32()))  # any integers
    expected: collections.Counter = collections.Counter()
    for key, value in pairs:
        expected[key] += value
    assert _counted(counter.counts()) == dict(expected)


def test_a_table_grown_many_times_keeps_every_count():
    words = [f"{'long-' * (n % 5)}w{n % 50_000}" for n in range(200_000)]
    counter = vectorized.KeyCounter(pa.large_string())
    for start in range(0, len(words), 30_000):
        counter.add(pa.array(words[start : start + 30_000], pa.large_string()))
    assert _counted(counter.counts()) == collections.Counter(words)


def test_offsets_outside_the_data_are_refused():
    from mapreduce import _speedups

    table = _speedups.str_counter()
    offsets = pa.array([0, 3, 9], pa.int64()).buffers()[1]
    with pytest.raises(ValueError, match="offsets do not fit"):
        _speedups.str_counter_add(table, offsets, b"abcd", 0, 2)
    with pytest.raises(ValueError, match="too short"):
        _speedups.str_counter_add(table, offsets, b"abcdefghi", 0, 3)
    with pytest.raises(ValueError, match="too short"):
        _speedups.str_counter_add(table, offsets, b"abcdefghi", 0, 2, b"\1\0\0\0\0\0\0\0")
    assert _speedups.str_counter_take(table)[3] == 0  # nothing counted


@pytest.mark.parametrize("counted_by", ["KeyCounter", "Arrow"])
def test_the_map_side_count_equals_counters_past_the_counters_limit(monkeypatch, counted_by):
    # A small limit: the counter hands its keys on as partial results many times, and they are
    # folded; without the C table, Arrow counts slices (the path where it is not built).
    monkeypatch.setattr(vectorized, "COUNTER_KEYS", 50)
    monkeypatch.setattr(vectorized, "PARTIAL_ROWS", 120)
    if counted_by == "Arrow":
        monkeypatch.setattr(vectorized, "str_counter", None)
    words = [f"w{n % 997}" for n in range(0, 20_000, 7)] + [None, "", "é"] * 5
    aggregator = vectorized.BatchAggregator("count")
    for start in range(0, len(words), 333):
        aggregator.add(pa.table({"key": pa.array(words[start : start + 333], pa.large_string())}))
    assert (aggregator.counter is not None) == (counted_by == "KeyCounter")
    result = aggregator.result()
    assert result is not None
    assert _counted(result) == collections.Counter(words)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.text(), st.sampled_from(TRICKY))),
    st.integers(1, 2**31 - 1) | st.integers(1, 9),
    st.integers(0, 3),
)
def test_a_string_columns_partitions_are_stable_partitions(keys, partitions, offset):
    for key_type in (pa.large_string(), pa.large_binary()):
        column = _arrow(["skipped"] * offset + keys, key_type).slice(offset)
        expected = [stable_partition(key, partitions) for key in column.to_pylist()]
        ids = stable_partition_array(column, partitions)
        assert ids is not None and ids.type == pa.int32()
        assert ids.to_pylist() == expected
        chunked = pa.chunked_array([column.slice(0, 1), column.slice(1)], key_type)
        assert stable_partition_array(chunked, partitions).to_pylist() == expected


def test_columns_c_does_not_partition_are_left_to_python():
    assert stable_partition_array(pa.array(["a", None], pa.large_string()), 2) is None
    assert stable_partition_array(pa.array(["a"], pa.string()), 2) is None
    assert stable_partition_array(pa.array([1], pa.int64()), 2) is None
