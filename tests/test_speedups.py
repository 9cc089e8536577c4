"""mapreduce/_speedups_src/map_loop.c, the C counting loop of the map side, against the Python loop it replaces."""

from __future__ import annotations

import random
import struct
import subprocess
import sys

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import ROOT, all_groups, speedups_missing, typed, write
from mapreduce.shuffle import keys as keys_module
from mapreduce.shuffle import partition as partition_module
from mapreduce.shuffle import stable_partition, writer

# The extension is optional (setup.py builds it where it can): without it these tests are skipped,
# with the reason shown in pytest's summary, and test_shuffle.py tests the Python loop alone.
pytestmark = pytest.mark.skipif(bool(speedups_missing()), reason=speedups_missing())

count_pairs = writer.c_count_pairs  # mapreduce._speedups.count_pairs, as the writer uses it


# --- the C counting loop agrees with the Python one --------------------------------------------------


class Text(str):
    """A str subclass: equal to a str, but a different key."""


def _random_pairs(rng, count):
    keys = [
        "a",
        "b",
        "c",
        b"a",
        1,
        2,
        None,
        True,
        1.0,
        Text("a"),
        ("b", "a"),  # not ("a", "b"): Python cannot order it against ("a", 1) in one partition
        ("a", 1),
        ("a", True),
    ]
    values = [1, 1, 1, 2, True, 1.0, 0, "1", b"1", None, Text("1"), (1,), 2**70]
    pairs = [(rng.choice(keys), rng.choice(values)) for _ in range(count)]
    if rng.random() < 0.3:
        pairs = [
            (rng.choice([("x", "y"), ("x", "z", "w"), ("y",)]), rng.choice([1, 1, "v", None]))
            for _ in range(count)
        ]  # all countable
    return pairs


@pytest.mark.parametrize("seed", range(25))
def test_c_and_python_counting_give_the_same_map_output(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    pairs = [
        pair
        for _ in range(rng.randrange(1, 6))
        for pair in _random_pairs(rng, rng.randrange(1, 3000))
    ]

    def passing_combiner(key, values):  # gives the same multiset however often it runs
        for value in values:
            yield key, value

    results = []
    for path in ("c", "python"):
        if path == "python":
            monkeypatch.setattr(writer, "c_count_pairs", None)
        (tmp_path / path).mkdir()
        output = write(tmp_path / path, pairs, num_partitions=3, combiner=passing_combiner)
        results.append(
            {
                partition: [
                    (typed(key), sorted(map(typed, values), key=repr)) for key, values in groups
                ]
                for partition, groups in all_groups(output).items()
            }
        )
    assert results[0] == results[1]


def test_count_pairs_counts_only_exact_plain_pairs():
    counts = {}
    assert count_pairs([("a", 1), ("b", 1), ("a", 1), (b"k", None), (7, "v")], counts)
    assert counts == {(int, 1): {"a": 2, "b": 1}, (type(None), None): {b"k": 1}, (str, "v"): {7: 1}}
    assert count_pairs([(("a", "b"), 1), (("a", "b"), 1), (("a", 2, None), 1)], counts)
    assert counts.pop((int, 1)) == {"a": 2, "b": 1, ("a", "b"): 2, ("a", 2, None): 1}
    counts[(int, 1)] = {"a": 2, "b": 1}
    for declined in (
        [("a", True)],
        [("a", 1.0)],
        [(Text("a"), 1)],
        [["a", 1]],
        [("a", 1, 2)],
        [("a", (1,))],
        [("a", 1), "ab"],
        [(True, 1)],
        [(("a", True), 1)],
        [(("a", ("b",)), 1)],
        [(("a", 1.0), 1)],
    ):
        assert not count_pairs(declined, counts)
    assert counts == {(int, 1): {"a": 2, "b": 1}, (type(None), None): {b"k": 1}, (str, "v"): {7: 1}}


def test_without_the_extension_its_tests_are_skipped_with_the_reason():
    # As on a machine without a C compiler: the import of mapreduce._speedups fails.
    program = (
        "import sys; sys.modules['mapreduce._speedups'] = None\n"
        "import pytest; sys.exit(pytest.main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            program,
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "0",  # in this process, where the import is made to fail (not in xdist's workers)
            __file__,
            "tests/test_shuffle.py::test_combiner_emitting_nothing_drops_the_key",
            "-k",
            "not without_the_extension",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout  # test_shuffle's Python counting path
    skipped = int(result.stdout.split(" skipped")[0].rsplit(" ", 1)[-1])
    assert skipped > 25  # every test here, and test_shuffle's C path
    assert "SKIPPED" in result.stdout and "mapreduce._speedups is not importable" in result.stdout


# --- the C encoder of tuples of strs agrees with the Python passes ----------------------------------

STR_TUPLE_KEYS = st.lists(
    st.one_of(
        st.tuples(st.text(), st.text()),
        st.lists(st.text(alphabet="ab\x00\udc80é\x20\U0001f600"), max_size=3).map(tuple),
        st.sampled_from([(Text("a"), "b"), ("a", 1), ("a", b"b"), ["a", "b"], "a b", (("a",),)]),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(STR_TUPLE_KEYS)
def test_c_str_tuple_encoder_agrees_with_the_python_passes(keys):
    c_encoded = keys_module.c_encode_str_tuples(keys)
    python_encoder = keys_module.c_encode_str_tuples
    try:
        keys_module.c_encode_str_tuples = None
        python_encoded = keys_module.str_tuple_encodings(keys)
    finally:
        keys_module.c_encode_str_tuples = python_encoder
    assert c_encoded == python_encoded  # the same bytes, or None (declined) for the same lists
    if c_encoded is not None:
        assert c_encoded == [keys_module.encode_key(key) for key in keys]
        assert _c_decoded(c_encoded) == keys
    # A spill's column of the same encodings, with the keys' default partitions, made by C.
    for num_partitions in (1, 3):
        column = partition_module.encoded_tuple_column(keys, num_partitions)
        if c_encoded is None:
            assert column is None
            continue
        encoded, widest, partitions = column
        encoded.validate(full=True)
        assert encoded.type == pa.large_binary() and encoded.to_pylist() == c_encoded
        assert widest == max(map(len, keys))
        if num_partitions == 1:
            assert partitions is None
        else:
            assert partitions.to_pylist() == [stable_partition(key, 3) for key in keys]
    # Decoding declines (None, for the Python path) whatever is not such an encoding.
    general = [_encoded_or_none(key) for key in keys if type(key) is tuple]
    general = [data for data in general if data is not None]
    decoded = _c_decoded(general)
    assert decoded is None or decoded == keys_module.decode_keys(general)
    for kind in (pa.large_binary(), pa.binary()):
        array = pa.array(general, kind)
        assert keys_module.decode_key_array(array) == keys_module.decode_keys(general)
        if len(general) > 2:  # a slice: the column's offset is honoured
            assert keys_module.decode_key_array(array[1:-1]) == keys_module.decode_keys(
                general[1:-1]
            )


def _c_decoded(encoded: list, kind=None):
    """The C decoder's keys from a column (large_binary unless `kind`) of these encodings (None
    when it declines)."""
    kind = kind or pa.large_binary()
    array = pa.array(encoded, kind)
    _, offsets, data = array.buffers()
    wide = kind == pa.large_binary()
    return keys_module.c_decode_str_tuple_column(offsets, data or b"", 0, len(array), wide)


def _encoded_or_none(key: tuple):
    try:
        return keys_module.encode_key(key)
    except keys_module.NotEncodable:  # a str subclass
        return None


def test_c_str_tuple_decoder_declines_other_encodings():
    decode = _c_decoded
    assert decode([keys_module.encode_key(("a", "é", ""))]) == [("a", "é", "")]
    for key in [("a\x00b",), ("\udc80",), ("a", 1), (b"a",), (("a",),), ()]:
        assert decode([keys_module.encode_key(key)]) is None
    assert decode([b"\x20a\x00\x00", b"\x20a\x00"]) is None  # a key cut short
    assert decode([b"\x20a\x00\x00\x00"]) is None  # a byte after the end
    assert decode([]) == []


def test_c_str_tuple_decoder_gives_equal_neighbours_one_tuple_and_checks_the_offsets():
    keys = [("a", "b"), ("a", "b"), ("a", "c"), ("a", "b")]
    for kind in (pa.large_binary(), pa.binary()):
        decoded = _c_decoded([keys_module.encode_key(key) for key in keys], kind)
        assert decoded == keys
        assert decoded[0] is decoded[1] and decoded[1] is not decoded[3]
        assert decoded[2][0] is decoded[1][0] and decoded[3][0] is decoded[2][0]  # "a" once
    shared = [("ab", "c"), ("ab", "cd", "e"), ("ab", "cd", "f"), ("abc",), ("abc", "", "")]
    decoded = _c_decoded([keys_module.encode_key(key) for key in shared])
    assert decoded == shared
    assert decoded[1][0] is decoded[0][0] and decoded[2][1] is decoded[1][1]
    assert decoded[3][0] is not decoded[2][0] and decoded[4][0] is decoded[3][0]
    offsets = struct.pack("<3q", 0, 4, 99)  # the second key would end past the data
    with pytest.raises(ValueError, match="offsets do not fit"):
        keys_module.c_decode_str_tuple_column(offsets, b"\x20a\x00\x00", 0, 2, True)
    with pytest.raises(ValueError, match="too short"):
        keys_module.c_decode_str_tuple_column(offsets, b"\x20a\x00\x00", 0, 3, True)


# --- the C builders of a spill's Arrow columns agree with pyarrow's conversion -----------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(), st.sampled_from([Text("a"), b"a", 1, None]))))
def test_c_str_columns_equal_pyarrows(items):
    array = writer._str_array(items) if items else None
    if not items or set(map(type, items)) != {str}:
        assert array is None or not items
        return
    try:
        expected = pa.array(items, pa.large_string())
    except (UnicodeError, pa.ArrowException):  # a lone surrogate: the run pickles it
        assert array is None
        return
    array.validate(full=True)
    assert array.equals(expected) and array.to_pylist() == items


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text()), st.randoms(use_true_random=False))
def test_c_str_column_in_an_order_equals_the_items_taken_in_it(items, rng):
    order = list(range(len(items)))
    rng.shuffle(order)
    indices = pa.array(order, pa.int64())
    array = writer._str_array(items, indices) if items else None
    if not items:
        return
    try:
        expected = pa.array([items[i] for i in order], pa.large_string())
    except (UnicodeError, pa.ArrowException):  # a lone surrogate: the run pickles it
        assert array is None
        return
    assert array is not None
    array.validate(full=True)
    assert array.equals(expected)
    if len(items) > 1:  # an order that is a slice of a longer array (a non-zero offset)
        tail = pa.array([0, *order], pa.int64()).slice(1)
        assert writer._str_array(items, tail).equals(expected)


def test_c_str_column_refuses_an_order_of_the_wrong_length_or_range():
    with pytest.raises(ValueError):
        writer.c_str_column(["a", "b"], pa.array([0], pa.int64()).buffers()[1])
    with pytest.raises(ValueError):
        writer.c_str_column(["a", "b"], pa.array([0, 2], pa.int64()).buffers()[1])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.sampled_from([2**63, -(2**63) - 1, True, 1.0, "1"]),
        )
    )
)
def test_c_int64_columns_equal_pyarrows(items):
    array = writer._int64_array(items)
    if set(map(type, items)) <= {int} and all(-(2**63) <= item < 2**63 for item in items):
        array.validate(full=True)
        assert array.equals(pa.array(items, pa.int64())) and array.to_pylist() == items
    else:
        assert array is None


# --- text_lines: the text part file of two Arrow columns, as format_record writes each row -------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.text(), st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1)))),
    st.integers(0, 3),
)
def test_c_text_lines_write_what_format_record_writes(pairs, skip):
    from mapreduce import output

    keys = [key for key, _ in pairs]
    values = [value for _, value in pairs]
    value_type = pa.int64() if values and type(values[0]) is int else pa.large_string()
    if len(set(map(type, values))) > 1:
        values = [str(value) for value in values]
        value_type = pa.large_string()
    try:
        key_array = pa.array(keys, pa.large_string()).slice(skip)  # a slice: non-zero offsets
        value_array = pa.array(values, value_type).slice(skip)
    except (UnicodeError, pa.ArrowException):  # a lone surrogate is no Arrow string
        return
    expected = "".join(map(output.format_record, keys[skip:], values[skip:]))
    assert output.format_table(key_array, value_array) == expected
    lines = output._arrow_lines(key_array, value_array)
    fields = keys[skip:] + values[skip:]
    if any(mark in text for text in fields if type(text) is str for mark in "\t\r\n"):
        assert lines is None  # format_field quotes such fields: Python writes them
    elif len(key_array):
        assert bytes(lines).decode("utf-8") + "\n" == expected
    built, output.c_text_lines = output.c_text_lines, None  # Arrow's join, where C is not built
    try:
        assert output.format_table(key_array, value_array) == expected
    finally:
        output.c_text_lines = built


# --- split_lines: a block's lines for Arrow, as the Python decoding gives them ------------------


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.text(), st.binary(), st.sampled_from(["\r", "\r\n", "é", "\ufeff"]))))
def test_c_split_lines_give_the_lines_python_decodes(parts):
    from mapreduce.inputs import text

    data = b"".join(p.encode("utf-8", "surrogatepass") if type(p) is str else p for p in parts)
    data += b"\n"  # a block of complete lines ends with a line break
    expected = text._decode_complete_lines(data)
    assert text.arrow_complete_lines(data).to_pylist() == expected
    built, text.c_split_lines = text.c_split_lines, None  # Arrow's split, where C is not built
    try:
        assert text.arrow_complete_lines(data).to_pylist() == expected
    finally:
        text.c_split_lines = built
