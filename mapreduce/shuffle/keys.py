"""Tuple keys as order-preserving bytes: Arrow sorts, merges and compares them without Python.

A tuple key made of str, int, float, bytes, bool, None and nested tuples of those is encoded so
that comparing the bytes (memcmp, what Arrow does for a binary column) gives Python's order of
the tuples, and decoding gives back the exact tuple (the same types, -0.0 kept):

    key      := item* END trailer
    item     := NONE | number | BYTES escaped | STR escaped | TUPLE item* END
    escaped  := the bytes (a str's UTF-8, lone surrogates kept) with 00 written 00 FF, then 00
    number   := NEG_INF | POS_INF | NAN | NONNEG magnitude | NEG ~magnitude (every byte inverted)
    magnitude:= 4-byte big-endian length n, the integer part in n bytes, then the fraction's
                binary digits 7 to a byte (digit << 1 | 1 if more follow, else digit << 1), or
                00 for none
    trailer  := one byte per number, in order: b bool, i int, f float, z the float -0.0

Numbers of every type share one encoding of their value, since Python compares 1, 1.0 and True
as equal (and (1,) == (1.0,) is one key); their types follow in the trailer, after everything
that orders, so equal keys of different number types sort next to each other and decode exactly.
Where Python cannot compare two keys (a str against an int at the same position), these bytes
still order them (by class: None < numbers < bytes < str < tuple); the run writer only encodes a
run whose keys Python can compare (see `uniform_signature`), so that case never shows.

NaN: every NaN encodes the same, after +inf (Python gives NaN no place in its order, so a sort
with NaNs is ill-defined there; here they sort last). As in Python, two NaNs are not equal, so
keys holding them do not group together.

`identity_bytes` is the key's encoding without the trailer: equal keys (Python ==) get equal
bytes, which is what partitioning hashes.
"""

from __future__ import annotations

import math
import struct
from itertools import chain, repeat
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc

try:  # the optional C coder of tuples of strs (mapreduce/_speedups.c, built where a compiler is)
    from mapreduce._speedups import decode_str_tuple_column as c_decode_str_tuple_column
    from mapreduce._speedups import encode_str_tuples as c_encode_str_tuples
except ImportError:  # (tests set them to None too, to run the Python passes they replace)
    c_encode_str_tuples = c_decode_str_tuple_column = None

STR_ENCODING = ("utf-8", "surrogatepass")

END = 0x00
NONE = 0x01
NEG_INF, NEG, NONNEG, POS_INF, NAN = 0x02, 0x03, 0x04, 0x05, 0x06
BYTES = 0x10
STR = 0x20
TUPLE = 0x30

_LENGTH = struct.Struct(">I")
_INVERT = bytes(range(255, -1, -1))
_BOOL, _INT, _FLOAT, _NEG_ZERO = b"b", b"i", b"f", b"z"

# The class of an item for `uniform_signature`: keys whose items have one class at every position
# can always be compared by Python (two keys first differ at items of the same class).
_CLASSES = {
    type(None): "None",
    bool: "number",
    int: "number",
    float: "number",
    bytes: "bytes",
    str: "str",
    tuple: "tuple",
}


class NotEncodable(Exception):
    """A key holds an item of a type this encoding does not cover (or a subclass of one)."""


# ---------------------------------------------------------------------------------------------------
# Encoding


def _escaped(data: bytes) -> bytes:
    return data.replace(b"\x00", b"\x00\xff") + b"\x00"


def _magnitude(integer: int, fraction: float) -> bytes:
    size = (integer.bit_length() + 7) // 8
    head = _LENGTH.pack(size) + integer.to_bytes(size, "big")
    if not fraction:
        return head + b"\x00"
    numerator, denominator = fraction.as_integer_ratio()
    bits = denominator.bit_length() - 1
    digits = -(-bits // 7)
    value = numerator << (7 * digits - bits)
    out = bytearray(digits)
    for index in range(digits - 1, -1, -1):
        value, digit = divmod(value, 128)
        out[index] = digit << 1 | (index < digits - 1)
    while out and out[-1] >> 1 == 0:  # no trailing zero digits: one encoding per value
        out.pop()
        if out:
            out[-1] &= 0xFE
    return head + bytes(out)


def _number(value, out: bytearray, trailer: bytearray) -> None:
    kind = type(value)
    if kind is float:
        if value != value:
            out.append(NAN)
            trailer += _FLOAT
            return
        if value in (float("inf"), float("-inf")):
            out.append(POS_INF if value > 0 else NEG_INF)
            trailer += _FLOAT
            return
        trailer += _NEG_ZERO if value == 0 and math.copysign(1.0, value) < 0 else _FLOAT
        magnitude = abs(value)
        integer = int(magnitude)
        encoded = _magnitude(integer, magnitude - integer)
    else:
        trailer += _BOOL if kind is bool else _INT
        integer = abs(value)
        encoded = _magnitude(integer, 0.0)
    if value < 0:
        out.append(NEG)
        out += encoded.translate(_INVERT)
    else:
        out.append(NONNEG)
        out += encoded


def _items(key: tuple, out: bytearray, trailer: bytearray, exact: bool) -> None:
    for item in key:
        kind = type(item)
        if kind is str:
            out.append(STR)
            out += _escaped(item.encode(*STR_ENCODING))
        elif kind is int or kind is float or kind is bool:
            _number(item, out, trailer)
        elif kind is tuple:
            out.append(TUPLE)
            _items(item, out, trailer, exact)
        elif kind is bytes:
            out.append(BYTES)
            out += _escaped(item)
        elif item is None:
            out.append(NONE)
        elif exact:
            raise NotEncodable(kind.__name__)
        else:
            _items((_plain(item),), out, trailer, exact)
    out.append(END)


def _plain(item):
    """For identity bytes: a subclass item as the plain value it equals (a namedtuple as a tuple,
    a str subclass as a str), since equal keys must partition together."""
    for base in (bool, int, float, str, bytes, tuple):
        if isinstance(item, base):
            return base(item)
    if isinstance(item, bytearray):
        return bytes(item)
    raise NotEncodable(type(item).__name__)


def encode_key(key: tuple) -> bytes:
    """The order-preserving bytes of one tuple key; NotEncodable if it holds anything but exact
    str, int, float, bytes, bool, None or tuples of those."""
    out, trailer = bytearray(), bytearray()
    _items(key, out, trailer, exact=True)
    return bytes(out + trailer)


def identity_bytes(key: tuple) -> bytes:
    """The key's encoding without the number types: equal for keys Python finds equal, whatever
    the numbers' types; NotEncodable if an item is none of the types covered (or subclasses)."""
    out = bytearray()
    _items(key, out, bytearray(), exact=False)
    return bytes(out)


def str_tuples_joined(keys: list) -> Optional[list]:
    """When every key is an exact tuple of exact strs (at least one; no NUL, no lone surrogate),
    the common case such as bigrams: the UTF-8 of each key's strs joined by 00 STR, which is its
    encoding less the leading STR and the final 00 00 (see str_tuple_encodings); else None."""
    if (
        not keys
        or set(map(type, keys)) != {tuple}
        or min(map(len, keys)) == 0
        or set(map(type, chain.from_iterable(keys))) != {str}
    ):
        return None
    try:
        joined = list(map(str.encode, map("\x00\x20".join, keys)))
    except UnicodeEncodeError:  # a lone surrogate: the general path keeps it
        return None
    # The separators hold one NUL each; any more is a NUL inside a str, to be escaped.
    if b"".join(joined).count(b"\x00") != sum(map(len, keys)) - len(keys):
        return None
    return joined


STR_TUPLE_HEAD, STR_TUPLE_TAIL = b"\x20", b"\x00\x00"


def str_tuple_encodings(keys: list) -> Optional[list]:
    """encode_key of every key, as a list of bytes, for the keys str_tuples_joined takes (in one C
    pass where mapreduce._speedups is built, else by C-level map passes), else None."""
    if c_encode_str_tuples is not None:
        return c_encode_str_tuples(keys)
    joined = str_tuples_joined(keys)
    if joined is None:
        return None
    return list(map(STR_TUPLE_HEAD.__add__, map(bytes.__add__, joined, repeat(STR_TUPLE_TAIL))))


def encode_keys(keys: list) -> list:
    """encode_key of every key, by C-level passes for tuples of strs; NotEncodable if any fails."""
    encoded = str_tuple_encodings(keys)
    return encoded if encoded is not None else list(map(encode_key, keys))


def encoded_with_signature(keys: list, encoded: Optional[list] = None) -> Optional[tuple]:
    """(encode_keys(keys) as a list or an Arrow large_binary array, uniform_signature(keys)) for
    tuple keys, or None when the signature is None; NotEncodable when a key holds another type.
    `encoded`, when given, is str_tuple_encodings(keys), already computed (not None)."""
    if encoded is None:
        encoded = str_tuple_encodings(keys)
    if encoded is not None:
        return encoded, str_tuple_signature(keys)
    signature = uniform_signature(keys)
    if signature is None:
        return None
    return list(map(encode_key, keys)), signature


def str_tuple_signature(keys: list) -> str:
    """uniform_signature of keys that are all tuples of strs (as str_tuple_encodings takes)."""
    return str_tuples_signature(max(map(len, keys)))


def str_tuples_signature(widest: int) -> str:
    """uniform_signature of tuples of strs whose longest has `widest` items."""
    return ";".join(f"{index}:str" for index in range(widest))


def uniform_signature(keys: list) -> Optional[str]:
    """For keys that are all tuples: a text naming the class of the items at each position (path
    of positions into nested tuples) when it is one class everywhere, else None. Two runs with
    the same signature hold keys Python can always compare (they first differ at items of one
    class); the writer encodes only such runs, so encoded order never hides a TypeError."""
    classes: dict = {}
    for key in keys:
        _classes_of(key, (), classes)
        if classes.get("conflict"):
            return None
    return ";".join(f"{'.'.join(map(str, path))}:{name}" for path, name in sorted(classes.items()))


def _classes_of(key: tuple, prefix: tuple, classes: dict) -> None:
    for index, item in enumerate(key):
        path = prefix + (index,)
        name = _CLASSES.get(type(item))
        if name is None:
            raise NotEncodable(type(item).__name__)
        if classes.setdefault(path, name) != name:
            classes["conflict"] = True
            return
        if name == "tuple":
            _classes_of(item, path, classes)


# ---------------------------------------------------------------------------------------------------
# Decoding


def decode_keys(encoded: list) -> list:
    """The tuple keys back from their encodings (each exactly the tuple encoded)."""
    return list(map(decode_key, encoded))


def decode_key_array(array: pa.Array) -> list:
    """decode_keys of an Arrow binary array: when every key is a tuple of strs with no NUL (STR
    s1 00 STR s2 00 ... 00), in one C pass over Arrow's buffers where mapreduce._speedups is
    built (equal neighbours give one tuple object), else by Arrow kernels (checked as UTF-8) and
    one str.split per key; else one key at a time."""
    binary = pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type)
    if c_decode_str_tuple_column is not None and binary and array.null_count == 0:
        _, offsets, data = array.buffers()
        if offsets is not None:  # (an empty array may have no buffers at all)
            decoded = c_decode_str_tuple_column(
                offsets,
                data if data is not None else b"",
                array.offset,
                len(array),
                pa.types.is_large_binary(array.type),
            )
            return decoded if decoded is not None else decode_keys(array.to_pylist())
    if len(array) and array.null_count == 0:
        try:
            if (
                pc.all(pc.starts_with(array, pattern="\x20")).as_py()
                and pc.all(pc.ends_with(array, pattern="\x00\x00")).as_py()
            ):
                inner = pc.binary_slice(array, 1, -2)
                # Only the separators (00 STR) may hold a NUL: else an escape, a number, a nesting.
                others = pc.replace_substring(inner, pattern="\x00\x20", replacement="")
                if not pc.any(pc.match_substring(others, pattern="\x00")).as_py():
                    texts = inner.cast(pa.large_string()).to_pylist()  # checks the UTF-8
                    return list(map(tuple, map(str.split, texts, repeat("\x00\x20"))))
        except pa.ArrowInvalid:
            pass  # a lone surrogate (kept by surrogatepass): decoded by Python below
    return decode_keys(array.to_pylist())


def decode_key(data: bytes) -> tuple:
    """One tuple key back from encode_key's bytes."""
    numbers: list = []
    items, end = _decode_items(data, 0, numbers)
    types = data[end:]
    if len(types) != len(numbers):
        raise ValueError("a tuple key's number types do not match its numbers")
    values = iter([_typed(number, types[i : i + 1]) for i, number in enumerate(numbers)])
    return _filled(items, values)


class _Number:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def _filled(items: list, values) -> tuple:
    return tuple(
        next(values)
        if type(item) is _Number
        else _filled(item, values)
        if type(item) is list
        else item
        for item in items
    )


def _typed(number: "_Number", kind: bytes):
    value = number.value
    if kind == _INT:
        return int(value)
    if kind == _BOOL:
        return bool(value)
    if kind == _NEG_ZERO:
        return -0.0
    if kind == _FLOAT:
        return float(value) if isinstance(value, (int, float)) else value[0] / value[1]
    raise ValueError(f"unknown number type {kind!r} in a tuple key")


def _decode_items(data: bytes, position: int, numbers: list) -> tuple:
    items: list = []
    while True:
        tag = data[position]
        position += 1
        if tag == END:
            return items, position
        if tag == STR or tag == BYTES:
            raw, position = _unescaped(data, position)
            items.append(raw.decode(*STR_ENCODING) if tag == STR else raw)
        elif tag == TUPLE:
            nested, position = _decode_items(data, position, numbers)
            items.append(nested)
        elif tag == NONE:
            items.append(None)
        elif tag in (NONNEG, NEG):
            value, position = _decode_magnitude(data, position, tag == NEG)
            numbers.append(_Number(value))
            items.append(numbers[-1])
        elif tag in (NEG_INF, POS_INF, NAN):
            numbers.append(
                _Number({NEG_INF: float("-inf"), POS_INF: float("inf")}.get(tag, float("nan")))
            )
            items.append(numbers[-1])
        else:
            raise ValueError(f"bad tag {tag} in a tuple key")


def _unescaped(data: bytes, position: int) -> tuple:
    out = bytearray()
    while True:
        end = data.index(b"\x00", position)
        out += data[position:end]
        if end + 1 < len(data) and data[end + 1] == 0xFF:
            out.append(0)
            position = end + 2
        else:
            return bytes(out), end + 1


def _decode_magnitude(data: bytes, position: int, negative: bool) -> tuple:
    """(value, position after it): an int, or (numerator, denominator) of a fraction."""
    flip = 0xFF if negative else 0
    (size,) = _LENGTH.unpack(bytes(b ^ flip for b in data[position : position + 4]))
    position += 4
    raw = bytes(b ^ flip for b in data[position : position + size])
    integer = int.from_bytes(raw, "big")
    position += size
    first = data[position] ^ flip
    sign = -1 if negative else 1
    if first == 0:
        return sign * integer, position + 1
    numerator, bits = 0, 0
    while True:
        byte = data[position] ^ flip
        position += 1
        numerator = numerator << 7 | byte >> 1
        bits += 7
        if not byte & 1:
            break
    denominator = 1 << bits
    return (sign * (integer * denominator + numerator), denominator), position
