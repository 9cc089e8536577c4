"""Tests of mapreduce.shuffle against plain Python references (sorted, collections), on real files."""

from __future__ import annotations

import collections
import os
import pickle
import random
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass

import pyarrow as pa
import pytest

from helpers import all_groups, groups_of, speedups_missing, typed, write
from mapreduce.errors import RecordError
from mapreduce.shuffle import (
    MapOutput,
    MapOutputWriter,
    ShuffleReadError,
    count_records,
    iter_partition_groups,
    stable_partition,
)
from mapreduce.shuffle.ordering import mixed_type_sort_key, sort_key_for

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True, order=True)
class Point:
    """A user type that can only travel pickled."""

    x: int
    y: int


@pytest.fixture(
    autouse=True,
    params=[
        pytest.param(
            "c-speedups",
            marks=pytest.mark.skipif(bool(speedups_missing()), reason=speedups_missing()),
        ),
        "python",
    ],
)
def counting_path(request, monkeypatch):
    """Every test here runs with the C counting loop (mapreduce/_speedups.c, where it is built)
    and without it."""
    from mapreduce.shuffle import writer

    if request.param == "python":
        monkeypatch.setattr(writer, "c_count_pairs", None)
    return request.param


def summing_combiner(key, values):
    yield key, sum(values)


def reference_groups(pairs) -> dict:
    grouped = collections.defaultdict(list)
    for key, value in pairs:
        grouped[typed(key)].append(value)
    return grouped


def assert_same_groups(groups, pairs):
    """The groups hold exactly the pairs, each key once, values as a multiset (order is not promised)."""
    expected = reference_groups(pairs)
    assert len(groups) == len(expected)
    for key, values in groups:
        assert sorted(values, key=repr) == sorted(expected[typed(key)], key=repr), key


# --- round trips and types --------------------------------------------------------------------------

NATIVE_SAMPLES = {
    "str": ["b", "a", "", "é", "日本", "a b\nc", "\x00"],
    "int": [3, -1, 0, 2**63 - 1, -(2**63), 42],
    "float": [2.5, -1.0, 0.0, 1e300, -3.75, float("inf")],
    "bytes": [b"x", b"", b"\x00\xff", b"abc"],
    "bool": [True, False],
}


@pytest.mark.parametrize("kind", sorted(NATIVE_SAMPLES))
def test_native_types_round_trip_with_exact_types(tmp_path, kind):
    samples = NATIVE_SAMPLES[kind]
    pairs = [(key, value) for key in samples for value in samples]
    groups = groups_of(write(tmp_path, pairs).files[0])
    assert [key for key, _ in groups] == sorted(set(samples))
    for key, values in groups:
        assert type(key) is type(samples[0])
        assert values == [value for value in samples]  # one run: values keep their order
        assert all(type(value) is type(samples[0]) for value in values)


def test_native_columns_are_stored_natively_and_others_pickled(tmp_path):
    (tmp_path / "native").mkdir()
    output = write(tmp_path / "native", [("a", 1), ("b", 2)])
    schema = pa.ipc.open_file(output.files[0][0]).schema
    assert schema.field("key").type == pa.large_string()
    assert schema.field("value").type == pa.int64()
    assert not schema.field("value").metadata

    (tmp_path / "pickled").mkdir()
    output = write(tmp_path / "pickled", [(("t", [1]), None)])
    schema = pa.ipc.open_file(output.files[0][0]).schema
    assert schema.field("key").type == pa.large_binary()
    assert schema.field("key").metadata == {b"encoding": b"pickle"}

    # Tuples of plain items are stored as order-preserving bytes, so Arrow sorts and merges them.
    (tmp_path / "tuples").mkdir()
    output = write(tmp_path / "tuples", [(("t", 1), None), (("s", 2), None)])
    schema = pa.ipc.open_file(output.files[0][0]).schema
    assert schema.field("key").type == pa.large_binary()
    assert schema.field("key").metadata == {
        b"encoding": b"tuple-order",
        b"signature": b"0:str;1:number",
    }


PICKLED_SAMPLES = [
    None,
    ("a", 1),
    ("a", (2, [3, {"x": b"y"}])),
    Point(1, 2),
    2**70,
    -(2**64),
    frozenset({1, 2}),
    [1, 2],
    {"nested": {"dict": [None, 1.5]}},
]


def test_pickled_values_round_trip_with_exact_types(tmp_path):
    pairs = [("k%d" % index, value) for index, value in enumerate(PICKLED_SAMPLES)]
    groups = dict(groups_of(write(tmp_path, pairs).files[0]))
    for key, value in pairs:
        assert groups[key] == [value]
        assert type(groups[key][0]) is type(value)


def test_pickled_keys_round_trip(tmp_path):
    keys = [("a", 1), ("a", 0), ("b",), (), ("a", 1, None), ("c", (2, 3)), ("a", 1)]
    groups = groups_of(write(tmp_path, [(key, index) for index, key in enumerate(keys)]).files[0])
    assert groups == [
        ((), [3]),
        (("a", 0), [1]),
        (("a", 1), [0, 6]),
        (("a", 1, None), [4]),
        (("b",), [2]),
        (("c", (2, 3)), [5]),
    ]
    assert [key for key, _ in groups] == sorted(set(keys))


def test_big_ints_and_none_keys_round_trip(tmp_path):
    pairs = [(2**80, "big"), (5, "small"), (-(2**70), "negative"), (2**80, "big again")]
    groups = groups_of(write(tmp_path, pairs).files[0])
    assert groups == [(-(2**70), ["negative"]), (5, ["small"]), (2**80, ["big", "big again"])]
    assert all(type(key) is int for key, _ in groups)

    os.mkdir(tmp_path / "none")
    groups = groups_of(write(tmp_path / "none", [(None, 1), (None, 2)]).files[0])
    assert groups == [(None, [1, 2])]


def test_surrogate_strings_round_trip(tmp_path):
    pairs = [("\ud800x", "a\udcffb"), ("plain", "\udfff"), ("\ud800x", "second")]
    output = write(tmp_path, pairs, num_partitions=3)
    groups = [
        group for partition in sorted(output.files) for group in groups_of(output.files[partition])
    ]
    assert sorted(groups) == [("plain", ["\udfff"]), ("\ud800x", ["a\udcffb", "second"])]
    assert output.files[stable_partition("\ud800x", 3)]


# --- ordering ----------------------------------------------------------------------------------------


def test_keys_of_one_type_come_in_python_order(tmp_path):
    rng = random.Random(5)
    keys = [
        rng.choice(["apple", "Apple", "banana", "é", "z", "ä", "日", "a\x00"])
        + str(rng.randrange(50))
        for _ in range(2000)
    ]
    pairs = [(key, 1) for key in keys]
    groups = groups_of(write(tmp_path, pairs, spill_records=300).files[0])
    assert [key for key, _ in groups] == sorted(set(keys))
    assert_same_groups(groups, pairs)


def test_mixed_types_order_by_type_name_then_value(tmp_path):
    keys = ["b", 2, "a", 1, 1.0, True, b"z", None, 0.5, False, ("t",)]
    groups = groups_of(write(tmp_path, [(key, index) for index, key in enumerate(keys)]).files[0])
    got = [key for key, _ in groups]
    assert got == sorted(keys, key=mixed_type_sort_key)
    # "NoneType" sorts first: upper case comes before lower case.
    assert got == [None, False, True, b"z", 0.5, 1.0, 1, 2, "a", "b", ("t",)]
    assert [type(key) for key in got] == [
        type(None),
        bool,
        bool,
        bytes,
        float,
        float,
        int,
        int,
        str,
        str,
        tuple,
    ]


def test_equal_keys_of_different_types_are_different_groups(tmp_path):
    pairs = [(1, "int"), (1.0, "float"), (True, "bool"), (1, "int again")]
    groups = groups_of(write(tmp_path, pairs).files[0])
    assert groups == [(True, ["bool"]), (1.0, ["float"]), (1, ["int", "int again"])]
    assert [type(key) for key, _ in groups] == [bool, float, int]


def test_runs_with_different_key_types_merge_in_the_mixed_order(tmp_path):
    # The first run holds only str keys, the second only int keys: the merge must order them by type
    # name although each run on its own was sorted in Python order.
    pairs = [("s%d" % i, i) for i in range(10)] + [(i, i) for i in range(10)] + [(1.5, "f")]
    output = write(tmp_path, pairs, spill_records=10)
    assert len(output.files[0]) == 3
    got = [key for key, _ in groups_of(output.files[0])]
    assert got == sorted({key for key, _ in pairs}, key=mixed_type_sort_key)
    assert got[0] == 1.5 and got[1:11] == list(range(10))


def test_sort_key_for():
    assert sort_key_for({str}) is None
    assert sort_key_for({int}) is None
    assert sort_key_for({int, str}) is mixed_type_sort_key
    assert sort_key_for({bool, int}) is mixed_type_sort_key
    assert sorted([2, "a", 1], key=sort_key_for({int, str})) == [1, 2, "a"]


# --- spills and merging ------------------------------------------------------------------------------


def test_many_spills_and_partitions_merge_to_the_reference(tmp_path):
    rng = random.Random(11)
    pairs = [("w%d" % rng.randrange(400), rng.randrange(10**6)) for _ in range(20000)]
    output = write(tmp_path, pairs, num_partitions=3, spill_records=1500)
    assert all(len(paths) >= 13 for paths in output.files.values())
    assert output.records_in == output.records_out == len(pairs)
    assert count_records([path for paths in output.files.values() for path in paths]) == len(pairs)
    groups = [
        group for partition_groups in all_groups(output).values() for group in partition_groups
    ]
    assert_same_groups(groups, pairs)
    for partition, partition_groups in all_groups(output).items():
        keys = [key for key, _ in partition_groups]
        assert keys == sorted(keys)
        assert all(stable_partition(key, 3) == partition for key in keys)


def test_merging_runs_of_several_map_tasks(tmp_path):
    # Five map tasks with int keys, each with several runs; the last task also has a None value, so its
    # value columns are pickled: with it the runs no longer concatenate in Arrow and the merge takes the
    # heapq path, without it the Arrow path. Both must match the reference.
    rng = random.Random(3)
    task_pairs, task_paths = [], []
    for task in range(5):
        directory = tmp_path / f"map-{task}"
        directory.mkdir()
        pairs = [(rng.randrange(-500, 500), rng.randrange(100)) for _ in range(3000)] + [
            (7, None)
        ] * (task == 4)
        task_pairs.append(pairs)
        task_paths.append(write(directory, pairs, spill_records=700).files[0])
    for tasks in (range(4), range(5)):
        pairs = [pair for task in tasks for pair in task_pairs[task]]
        groups = groups_of([path for task in tasks for path in task_paths[task]])
        assert [key for key, _ in groups] == sorted({key for key, _ in pairs})
        assert_same_groups(groups, pairs)


def test_merge_with_keys_spanning_batches(tmp_path, monkeypatch):
    # Small Arrow batches so that equal keys straddle batch boundaries in every run.
    monkeypatch.setattr("mapreduce.shuffle.runfile.ARROW_BATCH_ROWS", 7)
    monkeypatch.setattr("mapreduce.shuffle.merge.ARROW_BATCH_ROWS", 7)
    rng = random.Random(8)
    all_pairs, paths = [], []
    for task in range(4):
        directory = tmp_path / f"map-{task}"
        directory.mkdir()
        pairs = [(rng.choice("abcdefgh") * rng.randrange(1, 3), task) for _ in range(300)]
        all_pairs += pairs
        paths += write(directory, pairs).files[0]
    groups = groups_of(paths)
    assert [key for key, _ in groups] == sorted({key for key, _ in all_pairs})
    assert_same_groups(groups, all_pairs)


def test_empty_partition_list_and_empty_writer(tmp_path):
    assert list(iter_partition_groups([])) == []
    output = MapOutputWriter(str(tmp_path), 4).close()
    nothing = {"records": {}, "bytes": {}, "heavy_keys": []}
    assert output == MapOutput(
        files={}, records_in=0, records_out=0, bytes_written=0, stats=nothing
    )


# --- combiner ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("one", [1, 1.0], ids=["counted-int-values", "grouped-float-values"])
def test_summing_combiner_gives_the_counter_totals(tmp_path, one):
    rng = random.Random(2)
    words = [
        rng.choice(["the", "a", "of", "mapreduce", "x", "y"]) + str(rng.randrange(30))
        for _ in range(20000)
    ]
    calls = collections.Counter()

    def counting_combiner(key, values):
        calls[key] += 1
        yield key, sum(values)

    output = write(
        tmp_path,
        [(word, one) for word in words],
        num_partitions=4,
        combiner=counting_combiner,
        combine_every=500,
        spill_records=5000,
    )
    totals = {key: sum(values) for groups in all_groups(output).values() for key, values in groups}
    assert totals == collections.Counter(words)
    assert all(type(total) is type(one) for total in totals.values())
    assert output.records_in == len(words)
    assert output.records_out < len(words) // 10
    if type(one) is float:
        assert max(calls.values()) > 5  # grouped values are combined repeatedly, not just at close
    else:
        assert max(calls.values()) <= 2  # counted pairs stay compact: combined at close


class Text(str):
    """A str subclass: equal to a str, but a different key."""


# key kind -> (keys, whether their pairs are counted): the C loop (mapreduce/_speedups.c) and the
# Python one must agree, since counting changes how often the combiner runs.
COUNTING_KEY_KINDS = {
    "str": (["a", "é", ""], True),
    "bytes": ([b"a", b""], True),
    "int": ([0, -5, 2**70], True),
    "None": ([None], True),
    "tuple": ([("a", "b"), ("b", 1, None, b"x"), ()], True),
    "float": ([1.5], False),
    "bool": ([True], False),
    "str subclass": ([Text("a")], False),
    "tuple with a bool": ([("a", True)], False),
    "tuple with a float": ([("a", 1.0)], False),
    "nested tuple": ([("a", ("b",))], False),
    "frozenset": ([frozenset({"a"})], False),
}


@pytest.mark.parametrize("kind", list(COUNTING_KEY_KINDS))
def test_both_counting_paths_count_the_same_key_kinds(tmp_path, kind):
    keys, counted = COUNTING_KEY_KINDS[kind]
    calls = collections.Counter()

    def counting_combiner(key, values):
        calls[typed(key)] += 1
        yield key, sum(values)

    pairs = [(key, 1) for _ in range(5000) for key in keys]
    output = write(tmp_path, pairs, num_partitions=2, combiner=counting_combiner, combine_every=500)
    totals = {
        typed(key): sum(values) for groups in all_groups(output).values() for key, values in groups
    }
    assert totals == {typed(key): 5000 for key in keys}
    # Counted pairs are combined once, at close; grouped ones every combine_every records too.
    assert (max(calls.values()) == 1) is counted, dict(calls)


def test_counted_pairs_spill_when_distinct_keys_fill_the_buffer(tmp_path):
    words = [f"w{i % 3000}" for i in range(30000)]
    output = write(
        tmp_path,
        [(word, 1) for word in words],
        num_partitions=2,
        combiner=summing_combiner,
        spill_records=1000,
    )
    assert max(len(runs) for runs in output.files.values()) > 1
    totals = collections.Counter()
    for groups in all_groups(output).values():
        for key, values in groups:
            totals[key] += sum(values)
    assert totals == collections.Counter(words)


def test_counting_keeps_equal_values_of_different_types_apart(tmp_path):
    seen = []

    def recording_combiner(key, values):
        values = list(values)
        seen.append((key, [(type(v).__name__, v) for v in values]))
        yield key, len(values)

    pairs = [("k", 1)] * 3000 + [("k", True), ("k", 1.0)] + [(1, "v"), (True, "v"), (1.0, "v")]
    output = write(tmp_path, pairs, num_partitions=1, combiner=recording_combiner)
    k_values = sorted(v for key, values in seen if key == "k" for v in values)
    assert k_values.count(("int", 1)) == 3000
    assert ("bool", True) in k_values and ("float", 1.0) in k_values
    keys = [key for key, _ in all_groups(output)[0] if key != "k"]
    assert sorted(type(key).__name__ for key in keys) == ["bool", "float", "int"]


def test_combiner_with_add_and_int_keys(tmp_path):
    writer = MapOutputWriter(str(tmp_path), 2, combiner=summing_combiner, combine_every=3)
    expected = collections.Counter()
    for index in range(100):
        key = (index % 7, "pair") if index % 2 else index % 5
        writer.add(key, index)
        expected[typed(key)] += index
    writer.add(True, 1000)  # == 1 but a different key
    expected[typed(True)] += 1000
    output = writer.close()
    totals = {
        typed(key): sum(values) for groups in all_groups(output).values() for key, values in groups
    }
    assert totals == expected


def test_combiner_may_emit_other_keys(tmp_path):
    # The combiner lower-cases keys: its output is routed by the partitioner like map output.
    rng = random.Random(4)
    words = [rng.choice(["Apple", "APPLE", "apple", "Pear", "pear", "PLUM"]) for _ in range(3000)]

    def lowering_combiner(key, values):
        yield key.lower(), sum(values)

    output = write(
        tmp_path,
        [(word, 1) for word in words],
        num_partitions=3,
        combiner=lowering_combiner,
        combine_every=100,
    )
    totals = collections.Counter()
    for partition, groups in all_groups(output).items():
        for key, values in groups:
            assert stable_partition(key, 3) == partition
            totals[key.lower()] += sum(values)
    assert totals == collections.Counter(word.lower() for word in words)


def test_combiner_emitting_nothing_drops_the_key(tmp_path):
    def dropping_combiner(key, values):
        if key != "drop":
            yield key, sum(values)

    output = write(
        tmp_path, [("drop", 1), ("drop", 1), ("keep", 1), ("keep", 2)], combiner=dropping_combiner
    )
    assert groups_of(output.files[0]) == [("keep", [3])]


def test_unhashable_keys_with_a_combiner_raise_record_error(tmp_path):
    with pytest.raises(RecordError, match="type list"):
        write(tmp_path, [(["not", "hashable"], 1)], combiner=summing_combiner)


# --- partitioning ------------------------------------------------------------------------------------


def test_custom_partitioner_routes_keys_and_files_reflect_it(tmp_path):
    def by_length(key, num_partitions):
        return len(key) % num_partitions

    pairs = [("a", 1), ("bb", 2), ("dddd", 4), ("e", 5)]
    output = write(tmp_path, pairs, num_partitions=4, partitioner=by_length)
    assert sorted(output.files) == [0, 1, 2]
    assert all_groups(output) == {0: [("dddd", [4])], 1: [("a", [1]), ("e", [5])], 2: [("bb", [2])]}
    for partition, paths in output.files.items():
        assert [os.path.basename(path) for path in paths] == [f"part-{partition:05d}-run-000.arrow"]
        assert all(os.path.isabs(path) for path in paths)
    assert sorted(os.listdir(tmp_path)) == sorted(
        os.path.basename(p) for ps in output.files.values() for p in ps
    )
    assert output.bytes_written == sum(
        os.path.getsize(p) for ps in output.files.values() for p in ps
    )


def test_partitioner_out_of_range_raises_record_error(tmp_path):
    with pytest.raises(RecordError, match=r"partitioner returned 4 .*range\(0, 4\)"):
        write(tmp_path, [("a", 1)], num_partitions=4, partitioner=lambda key, n: n)


STABLE_KEYS = [
    "hello",
    "",
    "\ud800",
    12345,
    -7,
    2**70,
    1.5,
    True,
    None,
    b"raw",
    ("a", 1, 2.5),
    frozenset({"x", "y", "z", 3}),
    ("nested", (1, frozenset({2}))),
]


def test_stable_partition_is_the_same_in_other_processes_whatever_the_hash_seed():
    expected = [stable_partition(key, 97) for key in STABLE_KEYS]
    program = (
        "from mapreduce.shuffle import stable_partition\n"
        f"keys = {STABLE_KEYS!r}\n"
        "print([stable_partition(key, 97) for key in keys])\n"
    )
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=PROJECT_ROOT)
        result = subprocess.run(
            [sys.executable, "-c", program],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.strip() == str(expected)


def test_stable_partition_details():
    import zlib

    assert stable_partition("word", 7) == zlib.crc32(b"word") % 7
    assert stable_partition(b"word", 7) == zlib.crc32(b"word") % 7
    # Set iteration order does not matter, nor dict insertion order.
    assert stable_partition(frozenset(range(100)), 1000) == stable_partition(
        frozenset(range(99, -1, -1)), 1000
    )
    assert stable_partition(({"a": 1, "b": 2},), 1000) == stable_partition(
        ({"b": 2, "a": 1},), 1000
    )
    # Equal keys of one type go to the same partition; the type matters at the top level.
    assert stable_partition(0.0, 1000) == stable_partition(-0.0, 1000)
    assert (
        stable_partition((1,), 1000)
        == stable_partition((True,), 1000)
        == stable_partition((1.0,), 1000)
    )
    assert len({stable_partition(key, 2**31) for key in (1, 1.0, True, "1")}) == 4


@pytest.mark.parametrize(
    "keys",
    [
        ["k%d" % i for i in range(300)] + ["", "é", "日本", "\ud800x"],  # all str: bulk crc32
        list(range(-300, 300)) + [2**63 - 1, -(2**63), 2**70],  # all int: bulk crc32
        list(range(-30, 30)) + ["k%d" % i for i in range(30)] + [(1, 2), None],  # mixed: one by one
    ],
    ids=["str", "int", "mixed"],
)
def test_vectorised_partitioning_agrees_with_stable_partition(tmp_path, keys):
    # A chunk whose keys are all str or all int is partitioned in bulk (map chains over the
    # whole list); each must put every key where stable_partition(key) does.
    for combiner in (None, summing_combiner):
        directory = tmp_path / ("combined" if combiner else "plain")
        directory.mkdir()
        output = write(directory, [(key, 1) for key in keys], num_partitions=5, combiner=combiner)
        placed = {
            key: partition for partition, groups in all_groups(output).items() for key, _ in groups
        }
        assert placed == {key: stable_partition(key, 5) for key in keys}


# --- laziness ----------------------------------------------------------------------------------------


def test_values_are_a_lazy_iterator_even_for_a_huge_group(tmp_path):
    count = 1_000_000
    output = write(tmp_path, (("hot", index) for index in range(count)), spill_records=400_000)
    assert len(output.files[0]) == 3
    groups = iter_partition_groups(output.files[0])
    key, values = next(groups)
    assert key == "hot"
    assert not isinstance(values, (list, tuple))
    assert iter(values) is values
    tracemalloc.start()
    try:
        total = sum(values)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == count * (count - 1) // 2
    # A list of a million ints would take over 36 MB; batch by batch decoding stays far below.
    assert peak < 20 * 1024 * 1024
    assert next(groups, None) is None


def test_skipping_a_group_moves_to_the_next(tmp_path):
    output = write(tmp_path, [("a", 1), ("a", 2), ("b", 3)])
    groups = iter_partition_groups(output.files[0])
    assert next(groups)[0] == "a"
    key, values = next(groups)
    assert (key, list(values)) == ("b", [3])


# --- user errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, shown",
    [
        ("hi", "'hi' of type str"),
        ((1, 2, 3), "(1, 2, 3) of type tuple"),
        (42, "42 of type int"),
        ("x" * 200, "'" + "x" * 76 + "... of type str"),
    ],
)
def test_add_pairs_rejects_what_is_not_a_pair(tmp_path, item, shown):
    writer = MapOutputWriter(str(tmp_path), 2)
    writer.add_pairs([("ok", 1)])
    writer.add_pairs([item])
    writer.add_pairs([("ok", 2)])
    with pytest.raises(RecordError) as caught:  # pairs are checked a chunk at a time
        writer.close()
    assert str(caught.value).startswith(
        f"the mapper yielded {shown}; it must yield (key, value) pairs: write `yield key, value`"
    )
    assert caught.value.records_ago == 1  # so the error can name the record that yielded it


def test_a_list_yielded_twice_is_refused_rather_than_read_changed(tmp_path):
    def reusing_mapper():
        pair = ["a", 1]
        yield pair
        pair[0] = "b"
        yield pair

    writer = MapOutputWriter(str(tmp_path), 1)
    writer.add_pairs(reusing_mapper())
    with pytest.raises(RecordError, match="same list object"):
        writer.close()


def test_lists_and_tuple_subclasses_are_accepted_as_pairs(tmp_path):
    Pair = collections.namedtuple("Pair", "key value")
    output = write(tmp_path, [["a", 1], Pair("b", 2), ("c", 3)])
    assert groups_of(output.files[0]) == [("a", [1]), ("b", [2]), ("c", [3])]


@pytest.mark.parametrize(
    "value, type_name", [(lambda: 1, "function"), ((x for x in ()), "generator")]
)
def test_unpicklable_values_raise_record_error_naming_the_type(tmp_path, value, type_name):
    writer = MapOutputWriter(str(tmp_path), 1)
    writer.add_pairs([("a", 1), ("b", value)])
    with pytest.raises(RecordError, match=f"a value of type {type_name} cannot be pickled"):
        writer.close()
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".arrow")]


@pytest.mark.parametrize(
    "keys, type_name",
    [
        ([{"a": 1}, {"b": 2}], "dict"),
        ([(1, "a"), ("a", 1)], "tuple"),
    ],
)
def test_unorderable_keys_raise_record_error(tmp_path, keys, type_name):
    writer = MapOutputWriter(str(tmp_path), 1)
    writer.add_pairs([(key, 0) for key in keys])
    with pytest.raises(
        RecordError, match=f"keys of type {type_name} cannot be ordered: .*keys must be orderable"
    ):
        writer.close()


def test_keys_unorderable_only_across_runs_raise_record_error_when_merging(tmp_path):
    output = write(tmp_path, [((1, "a"), 0), (("a", 1), 0)], spill_records=1)
    with pytest.raises(RecordError, match="keys of type tuple cannot be ordered"):
        groups_of(output.files[0])


# --- unreadable map output ---------------------------------------------------------------------------


def test_a_truncated_run_raises_shuffle_read_error_with_its_path(tmp_path):
    output = write(tmp_path, [("k%d" % i, i) for i in range(1000)], spill_records=400)
    bad = output.files[0][1]
    with open(bad, "r+b") as handle:
        handle.truncate(os.path.getsize(bad) // 2)
    with pytest.raises(ShuffleReadError) as caught:
        groups_of(output.files[0])
    assert caught.value.path == bad
    assert bad in str(caught.value)


def test_a_missing_run_raises_shuffle_read_error_with_its_path(tmp_path):
    output = write(tmp_path, [("a", 1)])
    missing = str(tmp_path / "part-00000-run-999.arrow")
    with pytest.raises(ShuffleReadError) as caught:
        groups_of(output.files[0] + [missing])
    assert caught.value.path == missing
    with pytest.raises(ShuffleReadError):
        count_records([missing])


def test_a_garbage_run_raises_shuffle_read_error(tmp_path):
    garbage = tmp_path / "part-00000-run-000.arrow"
    garbage.write_bytes(b"not an arrow file at all" * 100)
    with pytest.raises(ShuffleReadError) as caught:
        groups_of([str(garbage)])
    assert caught.value.path == str(garbage)


def test_shuffle_read_error_survives_pickling():
    error = ShuffleReadError("/x/part-00000-run-000.arrow", OSError("gone"))
    copy = pickle.loads(pickle.dumps(error))
    assert copy.path == error.path
    assert str(copy) == "cannot read map output file /x/part-00000-run-000.arrow: OSError: gone"


def test_closed_writer_refuses_more_records_and_close_is_repeatable(tmp_path):
    writer = MapOutputWriter(str(tmp_path), 1)
    writer.add("a", 1)
    first = writer.close()
    assert writer.close() is first
    with pytest.raises(ValueError):
        writer.add("b", 2)


@pytest.mark.parametrize("kind", ["str", "int", "bytes", "bool", "float"])
def test_runs_have_pythons_key_order_and_keep_each_keys_values_in_order(tmp_path, kind):
    # str, int, bytes and bool runs are sorted by Arrow, float runs by Python (-0.0 == 0.0 is one
    # key whose values interleave): either sort must be stable.
    rng = random.Random(kind)
    make = {
        "str": lambda: "".join(
            rng.choice(["a", "Z", "é", "\uffff", "\U0001f600", "\u0100", "", "0"])
            for _ in range(rng.randrange(0, 4))
        ),
        "int": lambda: rng.randrange(-8, 8) * 2**59,  # keys repeat, up to 2**62 in size
        "bytes": lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3))),
        "bool": lambda: rng.random() < 0.5,
        "float": lambda: rng.choice([-0.0, 0.0, 1.5, -2.25, 1e300, float("inf")]),
    }[kind]
    pairs = [(make(), index) for index in range(3000)]
    output = write(tmp_path, pairs, num_partitions=1)
    groups = groups_of(output.files[0])
    assert [key for key, _ in groups] == sorted({key for key, _ in pairs})
    for key, values in groups:  # stable: a key's values in the order they were added
        assert values == [index for k, index in pairs if k == key]


def test_a_full_buffer_is_combined_and_spilled_not_combined_at_every_chunk(tmp_path):
    # Grouped pairs (float values) fill most of the buffer, then counted chunks repeat their keys:
    # combining alone would leave the buffer as full as before, to be combined again and again.
    # Each combine calls the combiner about once per key: a combine at every chunk (19 chunks)
    # would call it some 35,000 times here, combining and spilling when full about 3,800.
    calls = []

    def counting_combiner(key, values):
        calls.append(key)
        return summing_combiner(key, values)

    keys = [f"k{i}" for i in range(1900)]
    pairs = [(key, 1.0) for key in keys] + [(key, 1) for _ in range(20) for key in keys]
    output = write(
        tmp_path,
        pairs,
        num_partitions=2,
        combiner=counting_combiner,
        spill_records=2000,
        combine_every=10**9,
    )
    assert len(calls) <= 3 * len(keys)
    totals = collections.Counter()
    for groups in all_groups(output).values():
        for key, values in groups:
            totals[key] += sum(values)
    assert totals == {key: 21 for key in keys}


@pytest.mark.parametrize("codec", [None, "lz4", "zstd"])
def test_compressed_runs_read_back_as_written(tmp_path, codec):
    pairs = [(f"key{i % 500}", i) for i in range(20_000)] + [
        (("t", i % 9), "v") for i in range(900)
    ]
    (tmp_path / "plain").mkdir()
    plain = write(tmp_path / "plain", pairs, num_partitions=2, spill_records=4000, compression=None)
    (tmp_path / "codec").mkdir()
    output = write(
        tmp_path / "codec", pairs, num_partitions=2, spill_records=4000, compression=codec
    )
    # Repetitive keys compress: the codec is really used (and readers need not be told it).
    assert (output.bytes_written < plain.bytes_written) is (codec is not None)
    expected = collections.defaultdict(list)
    for key, value in pairs:
        expected[typed(key)].append(value)
    got = {typed(key): values for groups in all_groups(output).values() for key, values in groups}
    assert got == expected
