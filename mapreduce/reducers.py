"""Ready-made reducers a job may assign to `reducer`, which the framework recognises.

`identity_reducer` writes every value of every key as it came, in key order (Hadoop's
IdentityReducer): what a sort needs. Called as a function it is an ordinary reducer; a reduce task
that gets it and runs whose keys and values Arrow stores natively writes the merged runs to the
part file by Arrow, a slice at a time, with no Python per record.

    from mapreduce.reducers import identity_reducer
    reducer = identity_reducer
"""

from __future__ import annotations

from typing import Iterable, Iterator


def identity_reducer(key, values: Iterable) -> Iterator[tuple]:
    """Every (key, value) of the group, in the order the values come."""
    for value in values:
        yield key, value
