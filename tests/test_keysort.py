"""keysort.key_order: the stable order of an Arrow key column, checked against Python's sorted()
of the same keys (the C radix sort for string and binary columns, Arrow's sort for the rest)."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from mapreduce.shuffle import key_order

ALPHABET = "ab\0\x01é€😀"  # NUL sorts first; multi-byte UTF-8 sorts by code point


def python_order(keys: list) -> list:
    return sorted(range(len(keys)), key=keys.__getitem__)  # stable


def variants(array: pa.Array):
    """The array, a slice of it (a non-zero offset), and the same split into two chunks."""
    half = len(array) // 2
    yield array
    yield array.slice(3)
    yield pa.chunked_array([array.slice(0, half), array.slice(half)], type=array.type)


def str_keys(rng: random.Random, count: int) -> list:
    return ["".join(rng.choices(ALPHABET, k=rng.randint(0, 12))) for _ in range(count)]


def repeated_keys(rng: random.Random, count: int) -> list:
    # equal 8-byte prefixes, keys that are prefixes of others, and many equal keys
    words = ["the", "thea", "the\0", "", "abcdefgh", "abcdefghi", "abcdefgh\0", "abcdefgg"]
    return [rng.choice(words) for _ in range(count)]


def shared_prefix_keys(rng: random.Random, count: int) -> list:
    # all start alike (the radix prefix starts after what they share), some are only that start
    return ["\x20ab\0" + "".join(rng.choices(ALPHABET, k=rng.randint(0, 10))) for _ in range(count)]


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string()])
@pytest.mark.parametrize("count", [0, 1, 2, 17, 3000])
@pytest.mark.parametrize("make", [str_keys, repeated_keys, shared_prefix_keys])
def test_str_keys_in_python_order_and_stable(arrow_type, count, make):
    keys = make(random.Random(count), count)
    for array in variants(pa.array(keys, arrow_type)):
        expected = array.to_pylist()
        assert key_order(array).to_pylist() == python_order(expected)


@pytest.mark.parametrize("arrow_type", [pa.binary(), pa.large_binary()])
def test_bytes_keys_in_python_order(arrow_type):
    rng = random.Random(5)
    keys = [bytes(rng.choices(range(256), k=rng.randint(0, 12))) for _ in range(2000)]
    for array in variants(pa.array(keys, arrow_type)):
        assert key_order(array).to_pylist() == python_order(array.to_pylist())


def test_terasort_keys_sort_as_python_sorts_them():
    rng = random.Random(7)
    printable = [chr(c) for c in range(33, 127)]
    keys = ["".join(rng.choices(printable, k=10)) for _ in range(50_000)]
    assert key_order(pa.array(keys, pa.large_string())).to_pylist() == python_order(keys)


def test_other_columns_go_to_arrows_sort():
    keys = [3, None, -1, 3, 2]
    order = key_order(pa.array(keys, pa.int64())).to_pylist()
    assert order == [2, 4, 0, 3, 1]  # nulls last, equal keys in their order
    with_null = pa.array(["b", None, "a"])
    assert key_order(with_null).to_pylist() == [2, 0, 1]
