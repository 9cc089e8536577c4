"""The stable sort order of an Arrow column of keys, as the shuffle sorts a spill.

`key_order(keys)` is `pc.sort_indices(keys)` (ascending, stable), but a string or binary column
without nulls is ordered by mapreduce._speedups.sort_order: a radix sort of each key's first 8
bytes, then whole-key comparisons only among keys with equal first bytes. Arrow's sort compares
whole strings from their first byte at every step; on TeraSort's 10-byte keys it took about five
times as long. Byte order is Python's order of strs (UTF-8 keeps code point order) and of bytes.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

try:  # the optional C loops (setup.py builds mapreduce/_speedups.c where a compiler exists)
    from mapreduce._speedups import sort_order as c_sort_order
except ImportError:
    c_sort_order = None

_NARROW = (pa.string(), pa.binary())  # int32 offsets
_WIDE = (pa.large_string(), pa.large_binary())  # int64 offsets


def key_order(keys) -> pa.Array:
    """The indices that sort `keys` (an Arrow Array or ChunkedArray) ascending; equal keys keep
    their order."""
    if c_sort_order is None or keys.null_count or keys.type not in _NARROW + _WIDE:
        return pc.sort_indices(keys)
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks != 1 else keys.chunk(0)
    _, offsets, data = keys.buffers()
    if offsets is None:  # an empty array may have no buffers at all
        return pc.sort_indices(keys)
    order = c_sort_order(
        offsets, data if data is not None else b"", keys.offset, len(keys), keys.type in _WIDE
    )
    return pa.Array.from_buffers(pa.int64(), len(keys), [None, pa.py_buffer(order)])
