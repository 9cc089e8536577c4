"""What user code hands the framework: (key, value) pairs. The one check of that shape, and its message.

Mappers, combiners and reducers yield pairs; the shuffle's writer, the part writers and map-only
output all accept them through `as_pair` (or `as_pairs` for a stream), so every path takes the
same items and refuses the rest with the same RecordError. No I/O and no pyarrow here: the
coordinator side imports it too.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from .errors import RecordError


def short_repr(value) -> str:
    """repr(value) cut to 80 characters for a message, and never raising."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object with a failing repr>"
    return text if len(text) <= 80 else text[:77] + "..."


def is_pair(item) -> bool:
    """Whether `item` is accepted as a pair: a tuple (or tuple subclass) or list of two items."""
    return isinstance(item, (tuple, list)) and len(item) == 2


def as_pair(item, producer: str) -> tuple:
    """`item` as a plain (key, value) tuple: itself when it is one, a copy of a 2-list or 2-tuple
    subclass (a mapper may reuse and mutate a list it yielded), else RecordError naming the
    `producer` ("mapper", "combiner", "reducer") and the item."""
    if type(item) is tuple and len(item) == 2:
        return item
    if is_pair(item):
        return tuple(item)
    raise RecordError(
        f"the {producer} yielded {short_repr(item)} of type {type(item).__name__}; "
        f"it must yield (key, value) pairs: write `yield key, value` for each pair "
        f"(`return key, value` hands over the key and the value as two items)"
    )


def not_iterable_output(producer: str, output) -> RecordError:
    """The error for a mapper, reducer or hook that returned something other than an iterable of
    pairs (a number, a string is iterable but handled by as_pair)."""
    return RecordError(
        f"the {producer} returned {short_repr(output)} of type {type(output).__name__}, not "
        f"(key, value) pairs; {producer} must yield (key, value) pairs: use yield, not return"
    )


def as_pairs(items: Iterable, producer: str) -> Iterator[tuple]:
    """as_pair over a stream, calling it only for items that are not already plain 2-tuples (the
    common case costs no call: output loops of millions of records use this)."""
    for item in items:
        yield item if type(item) is tuple and len(item) == 2 else as_pair(item, producer)


def checked_output(output, producer: str):
    """`output` (what a mapper, reducer or hook returned) when it is iterable, else the
    RecordError saying to use yield."""
    if not hasattr(output, "__iter__"):
        raise not_iterable_output(producer, output)
    return output
