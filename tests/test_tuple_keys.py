"""Tuple keys as order-preserving bytes (mapreduce/shuffle/keys.py): byte order is Python's order,
decoding gives the exact tuple back, and tuple-keyed jobs shuffle to what a plain Counter gives."""

from __future__ import annotations

import collections
import math
import zlib

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import write
from mapreduce.shuffle import iter_partition_groups, partitions_of, stable_partition
from mapreduce.shuffle import keys as keys_module
from mapreduce.shuffle import partition as partition_module
from mapreduce.shuffle.keys import (
    decode_key,
    decode_key_array,
    decode_keys,
    encode_key,
    encode_keys,
    identity_bytes,
    uniform_signature,
)

NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False),
    st.sampled_from([0, 0.0, -0.0, True, False, 1, 1.0, -1, 0.5, 5e-324, -5e-324, 2.0**63]),
    st.booleans(),
)
LEAVES = st.one_of(NUMBERS, st.text(), st.binary(), st.none())
KEYS = st.recursive(
    st.tuples() | st.lists(LEAVES, max_size=4).map(tuple),
    lambda inner: st.lists(st.one_of(LEAVES, inner), max_size=4).map(tuple),
    max_leaves=8,
)


def exactly(a, b) -> bool:
    """Equal with the same types all the way down (and the same sign of zero; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(map(exactly, a, b))
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    return a == b


def python_order(a, b):
    """-1, 0 or 1 as Python orders the keys, or None when Python cannot compare them."""
    try:
        return (a > b) - (a < b)
    except TypeError:
        return None


@settings(max_examples=400, deadline=None)
@given(KEYS)
def test_decoding_gives_back_the_exact_tuple(key):
    assert exactly(decode_key(encode_key(key)), key)
    assert all(map(exactly, decode_keys(encode_keys([key, key])), [key, key]))


@settings(max_examples=600, deadline=None)
@given(KEYS, KEYS)
def test_byte_order_is_python_order(a, b):
    order = python_order(a, b)
    if order is None:
        return  # Python has no order for them (a str against an int): the writer never encodes them
    encoded = (encode_key(a) > encode_key(b)) - (encode_key(a) < encode_key(b))
    if order == 0:
        # Equal keys (1 and 1.0 and True) differ only in the trailing number types: the same
        # identity bytes (so the same partition), and nothing else sorts between them.
        assert identity_bytes(a) == identity_bytes(b)
        assert stable_partition(a, 7) == stable_partition(b, 7)
    else:
        assert encoded == order
        assert identity_bytes(a) != identity_bytes(b)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(), st.text()) | st.tuples(st.text(alphabet="a\x00\udc80\x20é")),
        min_size=1,
        max_size=20,
    )
)
def test_the_str_tuple_fast_paths_equal_the_general_ones(keys):
    _fast_paths_equal_the_general_ones(keys)
    c_encoder = keys_module.c_encode_str_tuples
    try:  # and the Python passes the C encoder (where built) replaces
        keys_module.c_encode_str_tuples = None
        _fast_paths_equal_the_general_ones(keys)
    finally:
        keys_module.c_encode_str_tuples = c_encoder


def _fast_paths_equal_the_general_ones(keys):
    assert encode_keys(keys) == [encode_key(key) for key in keys]
    assert decode_keys(encode_keys(keys)) == keys
    assert decode_key_array(pa.array(encode_keys(keys), pa.large_binary())) == keys
    assert partitions_of(keys, 5) == [stable_partition(key, 5) for key in keys]
    assert [stable_partition(key, 5) for key in keys] == [
        zlib.crc32(b"builtins.tuple\0T" + identity_bytes(key)) % 5 for key in keys
    ]


def test_zeros_nan_infinities_and_big_ints():
    keys = [(-0.0,), (0.0,), (0,), (False,), (float("nan"),), (float("inf"),), (-(2**100),)]
    for key in keys:
        assert exactly(decode_key(encode_key(key)), key)
    # -0.0, 0.0, 0 and False are one key, as in Python; NaN sorts after +inf (our policy).
    assert len({identity_bytes(key) for key in keys[:4]}) == 1
    assert encode_key((float("nan"),)) > encode_key((float("inf"),)) > encode_key((2**1000,))
    assert encode_key((-(2**100),)) < encode_key((float(-(2**99)),)) < encode_key((-1.5,))
    assert encode_key(()) < encode_key(("",)) < encode_key(("", "")) < encode_key(("\x00",))


def test_non_tuple_keys_partition_as_before():
    for key in ["word", "é", ""]:
        assert stable_partition(key, 11) == zlib.crc32(key.encode("utf-8")) % 11
    assert stable_partition(b"\x00x", 11) == zlib.crc32(b"\x00x") % 11
    assert stable_partition(-42, 11) == zlib.crc32(b"builtins.int\0n-42") % 11


def test_only_keys_python_can_always_compare_get_a_signature():
    assert uniform_signature([("a", 1), ("b", 2.5, None)]) == "0:str;1:number;2:None"
    assert uniform_signature([(1, "a"), ("a", 1)]) is None
    assert uniform_signature([("a", ("b", 1))]) == "0:str;1:tuple;1.0:str;1.1:number"


def shuffled_counts(directory, pairs, encoded: bool) -> dict:
    output = write(directory, pairs, num_partitions=3, spill_records=1500)
    got: dict = {}
    for paths in output.files.values():
        encodings = {
            pa.ipc.open_file(path).schema.field("key").metadata[b"encoding"] for path in paths
        }
        assert (encodings == {b"tuple-order"}) is encoded
        keys = []
        for key, values in iter_partition_groups(paths):
            keys.append(key)
            got[key] = got.get(key, 0) + sum(values)
        assert keys == sorted(keys)
    return got


def test_tuple_keyed_pairs_shuffle_to_the_counts_of_a_plain_counter(tmp_path):
    words = [f"w{i % 97}" for i in range(20_000)]
    pairs = [((a, b), 1) for a, b in zip(words, words[3:])]
    (tmp_path / "str").mkdir()
    got = shuffled_counts(tmp_path / "str", pairs, encoded=True)
    assert got == collections.Counter(key for key, _ in pairs)
    # Keys Python can compare only because they differ early are pickled and sorted by Python.
    pairs += [(("n" + a, len(a), i % 3 == 0), 1) for i, a in enumerate(words[:5000])]
    (tmp_path / "mixed").mkdir()
    got = shuffled_counts(tmp_path / "mixed", pairs, encoded=False)
    assert got == collections.Counter(key for key, _ in pairs)
    assert all(type(key) is tuple for key in got)


def test_keys_of_several_shapes_across_runs_merge_in_python_order(tmp_path):
    # Runs whose signatures differ are merged by Python (heapq) in the same order.
    pairs = [(("a",), 1), (("a", "b"), 1), (("a", "b", 2), 1), (("b",), 1), ((), 1)]
    output = write(tmp_path, pairs, num_partitions=1, spill_records=1)
    groups = [(key, list(values)) for key, values in iter_partition_groups(output.files[0])]
    assert [key for key, _ in groups] == sorted(key for key, _ in pairs)


def test_tuple_keys_with_sorted_values_merge_in_python_order(tmp_path):
    pairs = [((f"w{i % 17}", i % 5), (i * 7919) % 1000) for i in range(6000)]
    output = write(tmp_path, pairs, num_partitions=2, spill_records=700, sort_values=True)
    expected: dict = collections.defaultdict(list)
    for key, value in pairs:
        expected[key].append(value)
    got = {}
    for paths in output.files.values():
        groups = [(key, list(values)) for key, values in iter_partition_groups(paths, True)]
        assert [key for key, _ in groups] == sorted(key for key, _ in groups)
        got.update(groups)
    assert got == {key: sorted(values) for key, values in expected.items()}


# --- the map side's bigram path: keys encoded once, partitioned on the bytes, sorted by Arrow ----------


def _bigram_pairs(lines: list) -> list:
    pairs = []
    for line in lines:
        words = line.lower().split()
        pairs += [(pair, 1) for pair in zip(words, words[1:])]
    return pairs


LINES = [
    " ".join(f"w{(i * 7 + j * j) % 53}" for j in range(i % 9)) + (" é\x00" if i % 97 == 0 else "")
    for i in range(4000)
]


def _summed(key, values):
    yield key, sum(values)


@pytest.mark.parametrize("python_encoder", [False, True])
@pytest.mark.parametrize("combiner", [None, _summed])
@pytest.mark.parametrize("num_partitions", [1, 3])
def test_bigram_map_output_counts_like_a_plain_counter(
    tmp_path, monkeypatch, python_encoder, combiner, num_partitions
):
    # Small spills, so keys are encoded, partitioned and sorted by Arrow many times; some lines
    # hold a NUL, which the bigram path declines (those spills take the general path).
    if python_encoder:
        monkeypatch.setattr(keys_module, "c_encode_str_tuples", None)
        monkeypatch.setattr(partition_module, "c_encode_str_tuple_column", None)
    pairs = _bigram_pairs(LINES)
    output = write(
        tmp_path,
        pairs,
        num_partitions,
        combiner=combiner,
        spill_records=100,
        sort_buffer_bytes=1 << 30,
    )
    assert len(output.files[min(output.files)]) > 1  # several runs per partition
    got: collections.Counter = collections.Counter()
    for partition, paths in output.files.items():
        groups = [(key, list(values)) for key, values in iter_partition_groups(paths)]
        assert [key for key, _ in groups] == sorted(key for key, _ in groups)
        for key, values in groups:
            assert type(key) is tuple and all(type(item) is str for item in key)
            assert stable_partition(key, num_partitions) == partition
            got[key] += sum(values)
    assert got == collections.Counter(key for key, _ in pairs)


def test_bigram_path_calls_a_custom_partitioner_per_key(tmp_path):
    pairs = _bigram_pairs(LINES[:1500])

    def by_first_word(key, num_partitions):
        return len(key[0]) % num_partitions

    output = write(tmp_path, pairs, 2, combiner=_summed, partitioner=by_first_word)
    got: collections.Counter = collections.Counter()
    for partition, paths in output.files.items():
        for key, values in iter_partition_groups(paths):
            assert by_first_word(key, 2) == partition
            got[key] += sum(values)
    assert got == collections.Counter(key for key, _ in pairs)


def test_counted_tuple_keys_group_with_equal_keys_of_other_number_types(tmp_path):
    # ("a", 1) is counted (grouped as itself by the combiner); ("a", 1.0) and ("a", True) go
    # the Python path (grouped under (tuple, key)); equal tuples are one key, as in a Counter.
    pairs = [(("a", 1), 1)] * 50 + [(("a", 1.0), 1)] * 3 + [(("a", True), 1)] * 2
    pairs += [(("a", 1), 1)] * 5 + [(("b", "c"), 1)] * 4
    output = write(tmp_path, pairs, 1, combiner=_summed, spill_records=3)
    got: collections.Counter = collections.Counter()
    for key, values in iter_partition_groups(output.files[0]):
        got[key] += sum(values)
    assert got == collections.Counter(key for key, _ in pairs)
    assert len(got) == 2
