"""Which keys are the same, and in what order keys go: canonical key bytes and sort keys.

Keys are the same when they have the same type and are equal, so 1, 1.0 and True are three
different keys. `key_bytes` gives equal keys equal bytes in every process (what the stable
partition hashes). Keys of one type sort in Python order; as soon as a partition has keys of several
types (counted by type name) every key sorts by (type name, key). The map side's sort and the reduce
side's merge both take their order from here, so they agree exactly.
"""

from __future__ import annotations

import pickle
import struct
from functools import partial
from operator import itemgetter
from typing import Callable, Iterable, Optional

from mapreduce.errors import RecordError

from .keys import NotEncodable, identity_bytes

# ---------------------------------------------------------------------------------------------------
# Canonical bytes

STR_ENCODING = ("utf-8", "surrogatepass")  # how a str key becomes bytes: lone surrogates kept

_dumps = partial(pickle.dumps, protocol=5)
_type_tags: dict = {}


def _type_tag(key_type: type) -> bytes:
    tag = _type_tags.get(key_type)
    if tag is None:
        tag = f"{key_type.__module__}.{key_type.__qualname__}".encode(*STR_ENCODING) + b"\0"
        _type_tags[key_type] = tag
    return tag


INT_PREFIX = _type_tag(int) + b"n"  # key_bytes(n) for an int n is INT_PREFIX + b"%d" % n
# key_bytes(t) for a tuple t of str, int, float, bytes, bool, None and such tuples (items may be
# subclasses) is TUPLE_PREFIX + keys.identity_bytes(t): its order-preserving encoding, less the
# number types, so (1,), (1.0,) and (True,), one key, get the same bytes.
TUPLE_PREFIX = _type_tag(tuple) + b"T"
_LENGTH = struct.Struct(">I")


def key_bytes(key) -> bytes:
    """The bytes that stand for a key in every process and run: a str's UTF-8 (lone surrogates
    kept), a bytes key itself, a tuple's order-preserving encoding (see TUPLE_PREFIX), otherwise the key's type followed by a canonical encoding of its
    value (the type is included because keys of different types are different keys even when ==,
    like 1 and True)."""
    key_type = type(key)
    if key_type is str:
        return key.encode(*STR_ENCODING)
    if key_type is bytes:
        return key
    if key_type is int:
        return INT_PREFIX + b"%d" % key
    if key_type is tuple:
        try:
            return TUPLE_PREFIX + identity_bytes(key)
        except NotEncodable:
            pass  # an item of another type (a list, a set): the general encoding below
    return _type_tag(key_type) + _canonical(key)


def _canonical(value) -> bytes:
    """An encoding that is equal for equal values. Inside a container numbers are encoded by value
    alone, because (1,) == (True,) == (1.0,) group together as keys and so must partition together;
    set and dict members are sorted by their encoding so iteration order does not matter."""
    if value is None:
        return b"N"
    if isinstance(value, str):
        return b"s" + value.encode(*STR_ENCODING)
    if isinstance(value, (bytes, bytearray)):
        return b"b" + bytes(value)
    if isinstance(value, int):
        return b"n%d" % value
    if isinstance(value, float):
        return _canonical_float(value)
    if isinstance(value, tuple):
        return b"t" + _joined(map(_canonical, value))
    if isinstance(value, list):
        return b"l" + _joined(map(_canonical, value))
    if isinstance(value, (frozenset, set)):
        return b"S" + _joined(sorted(map(_canonical, value)))
    if isinstance(value, dict):
        return b"D" + _joined(
            sorted(_joined((_canonical(k), _canonical(v))) for k, v in value.items())
        )
    return _canonical_other(value)


def _canonical_float(value: float) -> bytes:
    # An integral float equals the int of the same value (and -0.0 equals 0.0), so it shares its encoding.
    if value.is_integer():
        return b"n%d" % int(value)
    return b"f" + value.hex().encode("ascii")


def _canonical_other(value) -> bytes:
    # Other objects have no canonical form we know of; their pickle is stable for equal plain objects.
    try:
        return b"o" + _type_tag(type(value)) + _dumps(value)
    except Exception as cause:
        raise RecordError(
            f"a key of type {type(value).__name__} cannot be partitioned: it is not a str, bytes, number, "
            f"None, tuple, frozenset or dict, and it cannot be pickled ({cause}); use a custom partitioner "
            f"or a simpler key"
        ) from cause


def _joined(encodings: Iterable[bytes]) -> bytes:
    # Length-prefixed so that no two different sequences of encodings give the same bytes.
    return b"".join(_LENGTH.pack(len(encoding)) + encoding for encoding in encodings)


# ---------------------------------------------------------------------------------------------------
# Order


def mixed_type_sort_key(key) -> tuple:
    """The order of keys of several types: by type name, then by value within a type."""
    return (type(key).__name__, key)


def sort_key_for(keys_types: set) -> Optional[Callable]:
    """The sort key for keys of these types: None (sort by the key itself) for one type, else
    mixed_type_sort_key."""
    return sort_key_for_names({key_type.__name__ for key_type in keys_types})


def sort_key_for_names(type_names: set) -> Optional[Callable]:
    """sort_key_for, given the types' names (as run files record them)."""
    # None keys do not support <, but (name, None) tuples compare equal without calling it.
    if len(type_names) > 1 or "NoneType" in type_names:
        return mixed_type_sort_key
    return None


def pair_sort_key(order: Optional[Callable]) -> Callable:
    """The sort key of a (key, x) pair for keys ordered by `order` (a sort_key_for result)."""
    if order is None:
        return itemgetter(0)
    return lambda pair: order(pair[0])


def pair_and_value_sort_key(order: Optional[Callable]) -> Callable:
    """The sort key of a (key, value) pair that orders by key, then by value (SORT_VALUES)."""
    if order is None:
        return lambda pair: pair
    return lambda pair: (order(pair[0]), pair[1])


def unorderable_values(cause: Exception) -> RecordError:
    """The RecordError for values that SORT_VALUES = True cannot put in order."""
    return RecordError(
        f"the job sets SORT_VALUES = True, so each key's values are sorted, but two of its values "
        f"cannot be compared: {cause}. Values of one key must be orderable with each other (str, "
        f"int, float, bytes, bool, or tuples of those, not a mix such as int and str); emit "
        f"values of one type, or remove SORT_VALUES and sort in the reducer"
    )


def unorderable(type_names: Iterable[str], cause: Exception) -> RecordError:
    """The RecordError for keys of these types that failed to compare with `cause`."""
    names = ", ".join(sorted(set(type_names)))
    return RecordError(
        f"keys of type {names} cannot be ordered: {cause}; keys must be orderable "
        f"(str, int, float, bytes, bool, or tuples of those)"
    )


def sort_pairs_by_key(pairs: list, sort_values: bool = False) -> None:
    """Sort (key, x) pairs in place by key, stably so equal keys keep their values' order (or,
    with `sort_values`, by key and then by value)."""
    key_types = set(map(type, map(itemgetter(0), pairs)))
    try:
        pairs.sort(key=pair_sort_key(sort_key_for(key_types)))
    except TypeError as cause:
        raise unorderable((key_type.__name__ for key_type in key_types), cause) from cause
    if sort_values:
        try:
            pairs.sort(key=pair_and_value_sort_key(sort_key_for(key_types)))
        except TypeError as cause:
            raise unorderable_values(cause) from cause
