"""The reduce side of the shuffle: one partition's sorted runs (from every map task) merged back
into key order.

`iter_partition_groups` gives the keys in increasing order, each with a lazy iterator over its
values (what a Python reducer reads); `iter_partition_slices` gives the merged rows as Arrow slices
(the vectorised API's identity reduce). Runs whose keys Arrow can order (native keys of one type)
are merged by Arrow a window at a time, also by key and value for SORT_VALUES when the values are
native ints, strs, bytes or bools; any others by heapq.merge in Python order. Equal keys of different types (1 and True) never
share a group.

Memory is bounded whatever the size of a key's values or the number of runs: a run is read one
record batch at a time, a merge round takes a bounded window of rows from each run, and more than
MERGE_FACTOR runs are first merged in consecutive groups into intermediate runs in a private
scratch directory, removed when the merge ends.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from itertools import chain, groupby
from operator import attrgetter, itemgetter
from typing import Callable, Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc

from mapreduce.defaults import ARROW_BATCH_ROWS

from .keysort import key_order
from .ordering import (
    pair_and_value_sort_key,
    pair_sort_key,
    sort_key_for_names,
    unorderable,
    unorderable_values,
)
from .runfile import RunReader, ShuffleReadError, write_merged_run, write_pickled_run

# A merge reads at most this many runs at once: more are first merged in groups into intermediate
# runs (Hadoop's io.sort.factor), so a reduce holds one batch of at most this many runs, whatever
# the number of map tasks and spills. (Measured on a giant key: with 32, 108 runs peaked 24 MB
# above 28 runs; with 16 the two are within 1 MB, for one more pass over the 108 runs' data.)
MERGE_FACTOR = 16
_ROUND_ROWS = 4 * ARROW_BATCH_ROWS  # rows a merge round takes from all its runs together, about
_MIN_WINDOW_ROWS = 1024  # ...and from each run at least

# Binary search in Arrow where this pyarrow has it (recent versions); otherwise count with a vectorised
# comparison, which is linear in the batch but still C++.
_search_sorted = getattr(pc, "search_sorted", None)


def _count_through(sorted_keys: pa.Array, bound: pa.Scalar) -> int:
    """How many of the sorted keys are <= bound."""
    if _search_sorted is not None:
        return _search_sorted(sorted_keys, bound, side="right").as_py()
    return pc.sum(pc.less_equal(sorted_keys, bound)).as_py() or 0


def _count_through_pair(batch: pa.RecordBatch, key: pa.Scalar, value: pa.Scalar) -> int:
    """How many rows of a batch sorted by (key, value) are <= (key, value): those with a smaller
    key, and of those with this key (a contiguous slice sorted by value), the values <= value."""
    keys = batch.column(0)
    if _search_sorted is not None:
        start = _search_sorted(keys, key, side="left").as_py()
        end = _search_sorted(keys, key, side="right").as_py()
    else:
        start = pc.sum(pc.less(keys, key)).as_py() or 0
        end = start + (pc.sum(pc.equal(keys, key)).as_py() or 0)
    if start == end:
        return start
    return start + _count_through(batch.column(1).slice(start, end - start), value)


class _ArrowCursor:
    """The merge's position in one run: a window of at most `window` rows at the front of the not
    yet merged rest of its current batch (so a round of the merge takes at most `window` rows
    from each run, however many rows share a key). `last` is the window's last key, or with
    `by_value` its last (key, value): the runs are then sorted by key and value (SORT_VALUES)."""

    __slots__ = ("run", "_batches", "_rest", "batch", "last", "window", "by_value")

    def __init__(self, run: RunReader, window: int, by_value: bool = False):
        self.run = run
        self.window = window
        self.by_value = by_value
        self._batches = run.batches()
        self._rest: pa.RecordBatch = pa.record_batch([], names=[])

    def next_window(self) -> bool:
        """Move the window to the next rows of the run; False when the run is exhausted."""
        while not self._rest.num_rows:
            batch = next(self._batches, None)
            if batch is None:
                return False
            self._rest = batch
        self.batch, self._rest = self._rest.slice(0, self.window), self._rest.slice(self.window)
        last_key = self.batch.column(0)[-1].as_py()
        self.last = (last_key, self.batch.column(1)[-1].as_py()) if self.by_value else last_key
        return True

    def has_more(self) -> bool:
        return self.batch.num_rows > 0 or self.next_window()

    def take_through(self, bound: tuple, whole: bool) -> pa.RecordBatch:
        """The rows up to `bound`, the (key, value) scalars of the bounding run's last row
        (with by_value: else its key alone bounds), or the whole window."""
        if whole:
            count = self.batch.num_rows
        elif self.by_value:
            count = _count_through_pair(self.batch, *bound)
        else:
            count = _count_through(self.batch.column(0), bound[0])
        taken, self.batch = self.batch.slice(0, count), self.batch.slice(count)
        return taken

    def rest(self) -> Iterator[pa.RecordBatch]:
        yield self.batch
        if self._rest.num_rows:
            yield self._rest
        yield from self._batches


def _next_pieces(cursors: list) -> list:
    """From every run's current batch, the records up to the smallest of the batches' last keys:
    nothing later in any run sorts before those, so once sorted together they can be emitted.
    Returns (run, batch slice) pieces."""
    bounding = min(cursors, key=attrgetter("last"))
    bound = (bounding.batch.column(0)[-1], bounding.batch.column(1)[-1])
    # The bounding run gives its whole batch, so the merge progresses even if keys compare oddly (NaN).
    return [
        (cursor.run, cursor.take_through(bound, whole=cursor is bounding)) for cursor in cursors
    ]


def _decoded_or_blamed(decode: Callable, array: pa.Array, pieces: list, column: int) -> list:
    """decode(array), where array mixes rows of several runs; a failure is blamed on the run whose own
    rows fail to decode, so the error names the bad file."""
    try:
        return decode(array)
    except Exception as cause:
        for run, batch in pieces:
            try:
                decode(batch.column(column))
            except Exception as run_cause:
                raise ShuffleReadError(run.path, run_cause) from run_cause
        raise ShuffleReadError(", ".join(run.path for run, _ in pieces), cause) from cause


_BY_KEY_AND_VALUE = [("key", "ascending"), ("value", "ascending")]


def _sorted_piece_slices(pieces: list, by_value: bool = False) -> Iterator[tuple]:
    """The pieces merged into key order by Arrow (a stable sort, so equal keys keep their run
    order; with `by_value`, into (key, value) order), as (pieces, key slice, value slice) of at
    most ARROW_BATCH_ROWS rows."""
    pieces = [(run, batch) for run, batch in pieces if batch.num_rows]
    if len(pieces) == 1:
        keys, values = pieces[0][1].column(0), pieces[0][1].column(1)
    else:
        keys = pa.concat_arrays([batch.column(0) for _, batch in pieces])
        values = pa.concat_arrays([batch.column(1) for _, batch in pieces])
        if by_value:
            table = pa.record_batch([keys, values], names=["key", "value"])
            order = pc.sort_indices(table, sort_keys=_BY_KEY_AND_VALUE)
        else:
            order = key_order(keys)  # stable: equal keys keep their run order
        keys, values = keys.take(order), values.take(order)
    for start in range(0, len(keys), ARROW_BATCH_ROWS):
        yield pieces, keys.slice(start, ARROW_BATCH_ROWS), values.slice(start, ARROW_BATCH_ROWS)


def _arrow_merged_slices(runs: list, by_value: bool = False) -> Iterator[tuple]:
    """The k-way merge done by Arrow, for runs whose keys are all stored natively with one Arrow type
    (whose sort order is Python's: UTF-8 byte order is code point order), and with `by_value`
    (runs sorted by key and value, SORT_VALUES) values too. Every round merges what is certainly
    next from all runs with one C++ sort, instead of a Python step per record as heapq.merge
    takes; memory stays at one batch per run plus one merged batch."""
    window = max(_MIN_WINDOW_ROWS, _ROUND_ROWS // max(1, len(runs)))
    cursors = [
        cursor
        for cursor in (_ArrowCursor(run, window, by_value) for run in runs)
        if cursor.next_window()
    ]
    while len(cursors) > 1:
        yield from _sorted_piece_slices(_next_pieces(cursors), by_value)
        cursors = [cursor for cursor in cursors if cursor.has_more()]
    for cursor in cursors:
        for batch in cursor.rest():
            yield from _sorted_piece_slices([(cursor.run, batch)])


def _arrow_merged_records(runs: list, by_value: bool = False) -> Iterator[Iterator[tuple]]:
    decode_key, decode_value = runs[0].decode_key, runs[0].decode_value
    for pieces, key_slice, value_slice in _arrow_merged_slices(runs, by_value):
        yield zip(
            _decoded_or_blamed(decode_key, key_slice, pieces, 0),
            _decoded_or_blamed(decode_value, value_slice, pieces, 1),
        )


def natively_mergeable(paths: list) -> bool:
    """Whether Arrow can merge these runs into slices of the keys and values as they are
    (iter_partition_slices): keys of one native type, values of one native type (neither
    pickled nor encoded). Reads only the runs' schemas."""
    if not paths:
        return True
    runs = [RunReader(path) for path in paths]
    for run in runs:
        run.close()
    type_names = set().union(*(run.key_type_names for run in runs))
    return (
        runs[0].keys_native
        and runs[0].value_field.metadata is None
        and _arrow_mergeable(runs, sort_key_for_names(type_names))
    )


def iter_partition_slices(paths: list) -> Iterator[tuple]:
    """One partition's rows merged in key order as (keys, values) Arrow slices, for reduces that
    need no Python per record. Only for runs Arrow can merge (native keys of one type, the same
    value type), which is what the vectorised map writes; raises ValueError otherwise."""
    if not paths:
        return
    with _Scratch(paths) as scratch:
        type_names = _key_type_names(paths)
        order = sort_key_for_names(type_names)
        runs = [RunReader(path) for path in scratch.fewer_runs(paths, order, type_names)]
        if not _arrow_mergeable(runs, order) or not runs[0].keys_native:
            raise ValueError("these runs cannot be merged by Arrow")
        for _, key_slice, value_slice in _arrow_merged_slices(runs):
            yield key_slice, value_slice


# Value types Arrow orders as Python does (floats are left to Python: NaN has no place in its order).
_ARROW_SORTED_VALUE_TYPES = (pa.large_string(), pa.int64(), pa.large_binary(), pa.bool_())


def _arrow_mergeable(runs: list, order: Optional[Callable], sort_values: bool = False) -> bool:
    """Whether Arrow can merge these runs: one native key type (or tuple keys encoded alike), and
    value columns that concatenate
    (and, to merge by key and value, native values Arrow orders as Python does)."""
    if order is not None:
        return False
    first = runs[0]
    if sort_values and (
        first.value_field.metadata is not None
        or first.value_field.type not in _ARROW_SORTED_VALUE_TYPES
    ):
        return False
    return all(
        not run.keys_pickled
        and run.key_field.equals(first.key_field, check_metadata=True)
        and run.value_field.equals(first.value_field, check_metadata=True)
        for run in runs
    )


def _heap_merged_records(
    runs: list, order: Optional[Callable], type_names: set, sort_values: bool = False
) -> Iterator[tuple]:
    """The general k-way merge (pickled or mixed-type keys, or sorted values), in Python order
    via heapq.merge."""
    sort_key = pair_and_value_sort_key(order) if sort_values else pair_sort_key(order)
    merged = heapq.merge(*(run.records() for run in runs), key=sort_key)
    try:
        yield from merged
    except TypeError as cause:
        if sort_values:
            raise unorderable_values(cause) from cause
        raise unorderable(type_names, cause) from cause


def _merged_records(
    runs: list, order: Optional[Callable], type_names: set, sort_values: bool = False
) -> Iterator[tuple]:
    if _arrow_mergeable(runs, order, sort_values):
        return chain.from_iterable(_arrow_merged_records(runs, sort_values))
    return _heap_merged_records(runs, order, type_names, sort_values)


def _key_type_names(paths: list) -> set:
    """The names of the key types of these runs (from their schemas: no data is read)."""
    names: set = set()
    for path in paths:
        run = RunReader(path)
        names |= run.key_type_names
        run.close()
    return names


class _Scratch:
    """A reduce's private scratch directory for intermediate runs, removed when done: beside the
    map outputs it merges when they are local (in the job's shuffle directory, so one left by a
    killed process goes with the job's), else in the system's temporary directory."""

    def __init__(self, paths: list) -> None:
        self.directory: Optional[str] = None
        self.made = 0
        first = paths[0] if paths else ""
        local = first and os.path.isabs(first) and os.path.isdir(os.path.dirname(first))
        self.parent = os.path.dirname(os.path.dirname(first)) if local else None

    def __enter__(self) -> "_Scratch":
        return self

    def __exit__(self, *exc) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def fewer_runs(
        self, paths: list, order: Optional[Callable], type_names: set, sort_values: bool = False
    ) -> list:
        """At most MERGE_FACTOR runs holding the records of `paths` in the same order: while there
        are more, consecutive groups of MERGE_FACTOR (so equal keys keep the runs' order) are merged
        into one intermediate run each, a batch at a time."""
        while len(paths) > MERGE_FACTOR:
            merged = []
            for start in range(0, len(paths), MERGE_FACTOR):
                group = paths[start : start + MERGE_FACTOR]
                merged.append(
                    group[0]
                    if len(group) == 1
                    else self._merge(group, order, type_names, sort_values)
                )
            kept = set(merged)  # a group of one intermediate run goes on as it is
            for path in paths:
                if (
                    self.directory is not None
                    and path.startswith(self.directory + os.sep)
                    and path not in kept
                ):
                    os.remove(path)  # an intermediate run merged again
            paths = merged
        return paths

    def _merge(
        self, group: list, order: Optional[Callable], type_names: set, sort_values: bool
    ) -> str:
        if self.directory is None:
            try:
                self.directory = tempfile.mkdtemp(prefix=".merge-", dir=self.parent)
            except OSError:  # a read-only map output directory: the system's temporary one
                self.directory = tempfile.mkdtemp(prefix="mapreduce-merge-")
        path = os.path.join(self.directory, f"merged-{self.made:05d}.arrow")
        self.made += 1
        runs = [RunReader(run) for run in group]
        if _arrow_mergeable(runs, order, sort_values):
            slices = ((keys, values) for _, keys, values in _arrow_merged_slices(runs, sort_values))
            write_merged_run(path, runs[0], type_names, slices)
        else:
            write_pickled_run(
                path, type_names, _merged_records(runs, order, type_names, sort_values)
            )
        return path


def _type_and_key(pair: tuple) -> tuple:
    return (type(pair[0]), pair[0])


def iter_partition_groups(paths: list, sort_values: bool = False) -> Iterator[tuple]:
    """Merge the sorted runs of one partition and yield (key, values) in increasing key order, where
    values is a lazy iterator (consume or skip it before asking for the next group), over the
    key's values in map order, or sorted with `sort_values` (runs sorted by key and value, as the
    map side writes them for a job with SORT_VALUES). Memory is bounded: runs are read a batch at a
    time, at most MERGE_FACTOR at once, and no key's values are gathered. A missing or corrupt
    run raises ShuffleReadError naming it."""
    if not paths:
        return
    with _Scratch(paths) as scratch:
        type_names = _key_type_names(paths)
        order = sort_key_for_names(type_names)
        fewer = scratch.fewer_runs(paths, order, type_names, sort_values)
        records = _merged_records(
            [RunReader(path) for path in fewer], order, type_names, sort_values
        )
        if order is None:
            for key, group in groupby(records, itemgetter(0)):
                yield key, map(itemgetter(1), group)
        else:
            # Several key types: equal keys of different types (1 and True) must not share a group.
            for (_, key), group in groupby(records, _type_and_key):
                yield key, map(itemgetter(1), group)


def count_records(paths: Iterable[str]) -> int:
    """The number of records in these run files, from their batch headers (no data is decoded)."""
    return sum(RunReader(path).count_records() for path in paths)
