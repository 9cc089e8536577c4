"""What user code yields, as (key, value) pairs: a 2-list becomes a tuple, anything else is refused
with a RecordError naming who yielded it (the mapper or the reducer) and what it was."""

from __future__ import annotations

from mapreduce.errors import RecordError


def as_pair(pair, who: str = "mapper"):
    if type(pair) is tuple and len(pair) == 2:
        return pair
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        return pair[0], pair[1]
    text = repr(pair)
    text = text if len(text) <= 80 else text[:77] + "..."
    raise RecordError(f"the {who} yielded {text} of type {type(pair).__name__}; it must yield "
                      f"(key, value) pairs")


def as_reducer_pair(pair):
    return as_pair(pair, "reducer")
