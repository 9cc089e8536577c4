"""Which reducer a key goes to: the stable default partition, and partitioning many keys at once.

The default partition of a key is crc32(key_bytes(key)) % number of partitions: the same in every
process and run, which hash() does not give (it is salted per process by PYTHONHASHSEED).
`partitions_of` partitions a whole list of keys, by C-level map chains when they are all str or all
int; the per-record writer and the vectorised API both use it, so a key goes to the same reducer
whichever API wrote it.
"""

from __future__ import annotations

import zlib
from itertools import repeat
from typing import Callable, Iterator, Optional

import pyarrow as pa

from mapreduce.errors import RecordError
from mapreduce.pairs import short_repr
from mapreduce.partitioners import RangePartitioner

from .keys import str_tuple_encodings
from .ordering import INT_PREFIX, STR_ENCODING, TUPLE_PREFIX, key_bytes

try:  # the optional C loops (setup.py builds mapreduce/_speedups.c where a compiler exists)
    from mapreduce._speedups import encode_str_tuple_column as c_encode_str_tuple_column
    from mapreduce._speedups import str_partitions as c_str_partitions
except ImportError:  # (tests set them to None too, to run the Python passes they replace)
    c_encode_str_tuple_column = None
    c_str_partitions = None


def stable_partition(key, num_partitions: int) -> int:
    """The default partitioner: crc32 of the key's canonical bytes, modulo num_partitions."""
    return zlib.crc32(key_bytes(key)) % num_partitions


def stable_partitions(keys: list, num_partitions: int) -> list:
    """[stable_partition(key, num_partitions) for key in keys], computed in bulk."""
    return list(map(num_partitions.__rmod__, _crc32s(keys)))


def stable_partition_array(keys, num_partitions: int):
    """stable_partition of every key of an Arrow large_string or large_binary array without
    nulls, as an int32 Array, computed by C from the array's buffers (a str key's bytes are its
    UTF-8, which Arrow holds); None for other arrays, or without the C extension."""
    if (
        c_str_partitions is None
        or keys.null_count
        or keys.type not in (pa.large_string(), pa.large_binary())
    ):
        return None
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks != 1 else keys.chunk(0)
    _, offsets, data = keys.buffers()
    if offsets is None:  # an empty array may have no buffers at all
        return pa.array([], pa.int32())
    ids = c_str_partitions(
        offsets, data if data is not None else b"", keys.offset, len(keys), num_partitions
    )
    return pa.Array.from_buffers(pa.int32(), len(keys), [None, pa.py_buffer(ids)])


# crc32 of TUPLE_PREFIX, continued over a tuple key's encoding gives crc32(key_bytes(key)).
_TUPLE_PREFIX_CRC = zlib.crc32(TUPLE_PREFIX)


def encoded_tuple_partitions(encoded: list, num_partitions: int) -> list:
    """stable_partitions of tuple keys of strs from their encodings (keys.str_tuple_encodings):
    key_bytes of such a key is TUPLE_PREFIX + its encoding, which has no number types."""
    crcs = map(zlib.crc32, encoded, repeat(_TUPLE_PREFIX_CRC))
    return list(map(num_partitions.__rmod__, crcs))


def encoded_tuple_column(keys: list, num_partitions: int) -> Optional[tuple]:
    """Tuple keys of strs (those keys.str_tuple_encodings takes) as (their encodings as a
    large_binary Arrow array, the most items in a key, their stable_partitions as an int32
    Arrow array, or None for one partition), else None: in one C pass where mapreduce._speedups
    is built (no bytes object per key), else from str_tuple_encodings."""
    if c_encode_str_tuple_column is not None:
        built = c_encode_str_tuple_column(keys, num_partitions, _TUPLE_PREFIX_CRC)
        if built is None:
            return None
        offsets, data, widest, partitions = built
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        encoded = pa.Array.from_buffers(pa.large_binary(), len(keys), buffers)
        if partitions is not None:
            partitions = pa.Array.from_buffers(
                pa.int32(), len(keys), [None, pa.py_buffer(partitions)]
            )
        return encoded, widest, partitions
    listed = str_tuple_encodings(keys)
    if listed is None:
        return None
    partitions = encoded_tuple_partitions(listed, num_partitions) if num_partitions > 1 else None
    return pa.array(listed, pa.large_binary()), max(map(len, keys)), partitions


def _crc32s(keys: list) -> Iterator[int]:
    if type(keys[0]) is tuple if keys else False:
        encoded = str_tuple_encodings(keys)
        if encoded is not None:
            return map(zlib.crc32, encoded, repeat(_TUPLE_PREFIX_CRC))
    return map(zlib.crc32, _keys_bytes(keys))


def _keys_bytes(keys: list) -> Iterator[bytes]:
    """key_bytes of every key: for all-str or all-int keys by C-level map chains that compute
    exactly what key_bytes does for one key, with no Python call per key."""
    key_types = set(map(type, keys))
    if key_types == {str}:
        encoding, errors = STR_ENCODING
        return map(str.encode, keys, repeat(encoding), repeat(errors))
    if key_types == {int}:
        return map(INT_PREFIX.__add__, map(b"%d".__mod__, keys))
    return map(key_bytes, keys)


def partitions_of(keys: list, num_partitions: int, partitioner: Optional[Callable] = None) -> list:
    """The partition of every key: by stable_partition (in bulk) when `partitioner` is None or
    stable_partition, in bulk by a RangePartitioner, else by calling the job's partitioner per key,
    whose every result must be an int in range(num_partitions) (RecordError naming the first key
    given a bad one)."""
    if partitioner is None or partitioner is stable_partition:
        return stable_partitions(keys, num_partitions)
    if isinstance(partitioner, RangePartitioner):
        return partitioner.partitions(keys, num_partitions)
    partitions = list(map(partitioner, keys, repeat(num_partitions)))
    # Only the distinct partition numbers are checked, so this costs a set() per call.
    for partition in set(partitions):
        if type(partition) is not int or not 0 <= partition < num_partitions:
            key = keys[partitions.index(partition)]
            raise RecordError(
                f"the partitioner returned {short_repr(partition)} for key {short_repr(key)}; "
                f"it must return an int in range(0, {num_partitions})"
            )
    return partitions
