"""The map side of the shuffle: `MapOutputWriter` buffers a map task's (key, value) pairs and writes
them, partitioned and sorted by key, as run files.

A map task feeds its pairs to a `MapOutputWriter`, which checks them, runs the job's combiner
over them, and writes each partition's buffer, sorted by key, as one run (see runfile.py) whenever
the buffer is full and at close. The hot path is a word count, so per-record work is done by
C-level iteration (map, zip, Counter, Arrow conversions and sorts, and the counting loop of
mapreduce/_speedups.c where it is built) rather than by Python loops.
"""

from __future__ import annotations

import bisect
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from operator import add, itemgetter
from typing import Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc

from mapreduce import storage
from mapreduce.defaults import (
    COMBINE_EVERY_RECORDS,
    SHUFFLE_COMPRESSION,
    SORT_BUFFER_BYTES,
    SPILL_RECORDS,
)
from mapreduce.errors import RecordError
from mapreduce.pairs import as_pair, as_pairs, is_pair, not_iterable_output, short_repr
from mapreduce.partitioners import RangePartitioner

from .keys import str_tuples_signature
from .keysort import key_order
from .partition import encoded_tuple_column, partitions_of, stable_partition
from .runfile import RunWriter, encoded_tuple_table

try:  # the optional C loops (setup.py builds mapreduce/_speedups.c where a compiler exists)
    from mapreduce._speedups import combine_counts as c_combine_counts
    from mapreduce._speedups import count_pairs as c_count_pairs
    from mapreduce._speedups import int64_column as c_int64_column
    from mapreduce._speedups import map_lines as c_map_lines
    from mapreduce._speedups import str_column as c_str_column
    from mapreduce._speedups import str_tally as c_str_tally
    from mapreduce._speedups import str_tally_drain as c_str_tally_drain
    from mapreduce._speedups import str_tally_size as c_str_tally_size
except ImportError:
    c_count_pairs = None  # (tests set them to None too, to run the Python loops they replace)
    c_map_lines = None
    c_str_tally = c_str_tally_drain = c_str_tally_size = None
    c_combine_counts = None
    c_str_column = c_int64_column = None

# What c_map_lines says when it returns (see mapreduce/_speedups_src/map_loop.c).
_MAP_DONE, _MAP_FULL, _MAP_HANDBACK, _MAP_RAISED = range(4)

_SIZE_SAMPLE = 1000  # pairs measured to turn the sort buffer's bytes into a record limit
_TUPLE_OVERHEAD = 56 + 8  # a 2-tuple plus its slot in the buffer list


def _pair_size(pair: tuple) -> int:
    key = pair[0]
    size = sys.getsizeof(key)
    if type(key) is tuple:  # a tuple key holds its items too (a bigram's two strs)
        size += sum(map(sys.getsizeof, key))
    return _TUPLE_OVERHEAD + size + sys.getsizeof(pair[1])


@dataclass
class MapOutput:
    """What a map task wrote: partition -> its run files (absolute paths; partitions without data absent)."""

    files: dict
    records_in: int
    records_out: int
    bytes_written: int
    # Records and bytes per partition and the heaviest keys (RunWriter.stats), for the map result.
    stats: dict = field(default_factory=dict)


def _hashable_group_key(key):
    """The dict key that groups `key`: 1, 1.0 and True are equal with equal hashes but are different
    keys here, so a non-str key is grouped under (type, key), except a tuple of items of the
    _COUNTABLE types (a bigram), grouped as itself: such tuples are equal only to tuples with
    items of the same types, and never to a (type, key) pair, since they hold no class."""
    if type(key) is tuple and _countable_tuple(key):
        return key
    try:
        hash(key)
    except TypeError as cause:
        raise RecordError(
            f"a key of type {type(key).__name__} cannot be used with a combiner: it is not hashable "
            f"({cause}); use hashable keys such as str, int or tuples"
        ) from None
    return (type(key), key)


def _key_of_group(group_key):
    if type(group_key) is str:
        return group_key
    # (type, key), or a countable tuple key as itself (which holds no class: see above).
    return group_key[1] if len(group_key) == 2 and isinstance(group_key[0], type) else group_key


def _keys_of_groups(group_keys: list) -> list:
    """_key_of_group of every group key, by one C-level pass when no key needs it: str keys and
    countable tuple keys (bigrams) are grouped as themselves, and a (type, key) group is told
    by its first item, a class, where a str's or a countable tuple's is a str, bytes, int or
    None."""
    if group_keys and type(group_keys[0]) is str and set(map(type, group_keys)) == {str}:
        return group_keys  # (a quicker pass for all-str keys)
    try:
        firsts = set(map(type, map(itemgetter(0), group_keys)))
    except IndexError:  # an empty str or tuple key
        firsts = None
    if firsts is not None and firsts <= _COUNTABLE:
        return group_keys
    return list(map(_key_of_group, group_keys))


def _countable_tuple(key: tuple) -> bool:
    return set(map(type, key)) <= _COUNTABLE


_CHUNK_PAIRS = 2048  # items per C-level pass: small enough that a chunk stays in the CPU cache

# A chunk whose keys and values all have exactly these types (keys may also be exact tuples of
# them, such as bigrams) is counted as whole (key, value) tuples: no two values of different types
# here compare equal, so counting never merges 1 with 1.0 or True, or a str with a str subclass,
# and equal pairs are interchangeable. mapreduce/_speedups_src/map_loop.c accepts exactly the same.
_COUNTABLE = frozenset({str, bytes, int, type(None)})
_COUNTABLE_OR_TUPLE = _COUNTABLE | {tuple}


def _all_plain_pairs(chunk: list) -> bool:
    """Whether every item is a plain 2-tuple (lists and tuple subclasses take the checked path)."""
    return set(map(type, chunk)) == {tuple} and set(map(len, chunk)) == {2}


def _counted_pairs(chunk: list) -> Optional[Counter]:
    """The chunk as a Counter of (key, value) pairs, or None when it cannot be counted exactly
    (then the checked path handles it, and names any item that is not a pair)."""
    try:
        item_types = set(map(type, chain.from_iterable(chunk)))
        if not item_types <= _COUNTABLE and not (
            item_types <= _COUNTABLE_OR_TUPLE and _countable_tuple_keys(chunk)
        ):
            return None
        counts = Counter(chunk)
    except TypeError:  # an item that is not iterable, or not hashable (a list)
        return None
    # Every item equals one of the distinct ones, with the same types, so checking those suffices.
    if not _all_plain_pairs(list(counts)):
        return None
    return counts


def _countable_tuple_keys(chunk: list) -> bool:
    """Whether the chunk's tuples are all keys made of countable items (no tuple value, no
    nesting); checked over every item, since Counter would merge ("a", 1) with ("a", True)."""
    if not _all_plain_pairs(chunk) or not set(map(type, map(itemgetter(1), chunk))) <= _COUNTABLE:
        return False
    tuple_keys = [key for key in map(itemgetter(0), chunk) if type(key) is tuple]
    return set(map(type, chain.from_iterable(tuple_keys))) <= _COUNTABLE


def _add_counts(total: dict, keys: list, counts: Iterable) -> None:
    """total[key] += count for each key and count, by C-level map/zip (Counter.update loops in Python)."""
    dict.update(total, zip(keys, map(add, counts, map(total.get, keys, repeat(0)))))


def _checked_pairs(chunk: list, ends: list) -> list:
    """The chunk as (key, value) tuples, or RecordError for the first item that is not a pair."""
    pairs = []
    lists_seen: set = set()
    for index, item in enumerate(chunk):
        if type(item) is not tuple or len(item) != 2:  # as_pair returns a plain pair as it is
            try:
                if type(item) is list:
                    _check_list_not_reused(item, lists_seen)
                item = as_pair(item, "mapper")
            except RecordError as error:
                raise _located(error, ends, index) from None
        pairs.append(item)
    return pairs


def _check_list_not_reused(item: list, lists_seen: set) -> None:
    # Pairs are read a chunk after they were yielded, so a list the mapper yielded and then changed
    # would be read with its last contents. Refuse a list object yielded twice rather than guess.
    if id(item) in lists_seen:
        raise RecordError(
            f"the mapper yielded the same list object {short_repr(item)} more than once; yield a new "
            f"list or a tuple for each pair (the framework reads pairs after the mapper moves on)"
        )
    lists_seen.add(id(item))


def _located(error: RecordError, ends: list, index: int) -> RecordError:
    """Say which add_pairs call added item `index` of a chunk: `ends` holds the chunk's length
    after each call, the last entry being the current call's."""
    error.records_ago = len(ends) - 1 - bisect.bisect_right(ends, index)
    return error


class MapOutputWriter:
    """Buffers one map attempt's output and writes it as sorted Arrow runs in `directory`.

    A record's pairs are appended to a pending chunk by C code (list.extend), then checked and
    (with a combiner) counted a chunk at a time by C-level passes, so on the common path (str,
    bytes, int or None keys and values) no Python statement runs per pair. Partitioning, sorting
    and encoding happen in bulk at spill time, and with a combiner the partitioner runs once per
    distinct key."""

    def __init__(
        self,
        directory: str,
        num_partitions: int,
        partitioner=None,
        combiner=None,
        spill_records: int = SPILL_RECORDS,
        combine_every: int = COMBINE_EVERY_RECORDS,
        sort_buffer_bytes: int = SORT_BUFFER_BYTES,
        combiner_final=None,
        sort_values: bool = False,
        compression: Optional[str] = SHUFFLE_COMPRESSION,
    ):
        """`combiner_final()` (the job's hook), when given, is called once at close, after the
        last combine: the pairs it returns or yields are written as they are, not combined.
        `compression` is the codec of the run files' buffers ("lz4", "zstd" or None)."""
        if num_partitions < 1:
            raise ValueError(f"num_partitions must be at least 1, not {num_partitions}")
        # sort_values: runs sorted by key then value (the job's SORT_VALUES), for the reduce's merge.
        self._runs = RunWriter(storage.absolute(directory), sort_values, compression)
        self._num_partitions = num_partitions
        self._partitioner = partitioner
        self._combiner = combiner
        self._combiner_final = combiner_final
        self._spill_records = max(1, spill_records)
        self._combine_every = max(1, combine_every)
        self._pending: list = []  # the current chunk: items as the mapper yielded them, unchecked
        self._ends: list = []  # len(_pending) after each add_pairs call, to locate a bad item
        self._pairs: list = []  # without a combiner: checked (key, value) tuples in arrival order
        self._counts: dict = {}  # with one: (type, value) -> {key: times seen}, for countable chunks
        # ...and map_lines' str keys, counted in C until the combiner runs (_drain_tally).
        self._tally = c_str_tally() if c_map_lines is not None and combiner is not None else None
        self._groups: dict = {}  # ...and group key (see _hashable_group_key) -> list of values
        self._since_combine = 0
        self._records_in = 0
        self._output: Optional[MapOutput] = None
        # The buffer is bounded in bytes too: after a sample of pairs, the record limit becomes
        # sort_buffer_bytes / (their average size), so big records spill (and chunk) sooner.
        self._sort_buffer_bytes = sort_buffer_bytes
        self._buffer_limit = min(self._spill_records, _SIZE_SAMPLE)
        self._chunk_limit = min(_CHUNK_PAIRS, self._buffer_limit)
        self._sized = False

    # -- adding ------------------------------------------------------------------------------------

    def add(self, key, value) -> None:
        self.add_pairs(((key, value),))

    def add_pairs(self, pairs: Iterable) -> None:
        """Add one record's output; every item must be a (key, value) 2-tuple or 2-list.

        Items are checked a chunk at a time, so a bad one may raise in a later call (or in close);
        the RecordError then says in `records_ago` how many calls back it was added."""
        if self._output is not None:
            raise ValueError("this MapOutputWriter is closed")
        pending = self._pending
        items = iter(pairs)
        pending.extend(islice(items, self._chunk_limit - len(pending)))
        self._ends.append(len(pending))
        while len(pending) >= self._chunk_limit:
            self._absorb_pending()
            pending = self._pending
            pending.extend(islice(items, self._chunk_limit))
            self._ends.append(len(pending))

    @property
    def can_map_lines(self) -> bool:
        """Whether map_lines is built (mapreduce._speedups)."""
        return c_map_lines is not None

    @property
    def maps_lines(self) -> bool:
        """Whether map_lines can be used now: the C loop is built, and the buffer is sized (by
        the pairs of a first chunk added through add_pairs)."""
        return c_map_lines is not None and self._sized

    def map_lines(self, mapper, path: str, lines: list, start: int = 0) -> tuple:
        """Map lines[start:] with `mapper(path, line)` in C, adding each record's pairs as
        add_pairs would (pending pairs are absorbed first, so a bad one is located as before);
        the buffer is spilled whenever it fills. Returns (index, rest, error): lines[:index]
        are wholly added; when index < len(lines), lines[index] was mapped and either raised
        `error`, or gave output the C loop does not take, of which `rest` is what is left to
        add (by add_pairs, as that record's output: the same checks and messages)."""
        if self._output is not None:
            raise ValueError("this MapOutputWriter is closed")
        assert c_map_lines is not None and self._sized, "map_lines when maps_lines is False"
        self.flush()
        while True:
            if self._combiner is not None:
                room = self._buffer_limit - self._counted_keys() - len(self._groups)
                status, start, extra, taken = c_map_lines(
                    mapper, path, lines, start, self._counts, None, room, self._tally
                )
            else:
                room = self._buffer_limit - len(self._pairs)
                status, start, extra, taken = c_map_lines(
                    mapper, path, lines, start, None, self._pairs, room, None
                )
            self._records_in += taken
            if status == _MAP_DONE:
                return start, None, None
            if status == _MAP_RAISED:
                return start, None, extra
            if status == _MAP_HANDBACK:
                taken_items, rest = extra
                return start, chain(taken_items, rest) if taken_items else rest, None
            if self._combiner is not None:  # _MAP_FULL
                self._combine_and_spill()
            else:
                self._spill()

    def flush(self) -> None:
        """Check and absorb the pending chunk now (close does it too)."""
        if self._pending:
            self._absorb_pending()

    def _absorb_pending(self) -> None:
        chunk, ends = self._pending, self._ends
        self._pending, self._ends = [], [0]  # 0: the current call's items start the next chunk
        if not chunk:
            return
        if not self._sized:
            self._size_buffer(chunk)
        self._records_in += len(chunk)
        if self._combiner is None:
            self._pairs += chunk if _all_plain_pairs(chunk) else _checked_pairs(chunk, ends)
            if len(self._pairs) >= self._buffer_limit:
                self._spill()
            return
        # The C loop (mapreduce/_speedups_src/map_loop.c) counts exactly what the Python one would.
        if (c_count_pairs is not None and c_count_pairs(chunk, self._counts)) or self._count(chunk):
            # Counted pairs take no more room as they repeat, so they wait for the final combine
            # unless the distinct ones fill the buffer: then all of it is combined and spilled
            # (combining alone could leave it nearly full, to be combined again at every chunk).
            if self._counted_keys() + len(self._groups) >= self._buffer_limit:
                self._combine_and_spill()
            return
        self._group(_checked_pairs(chunk, ends), ends)
        self._since_combine += len(chunk)
        if self._since_combine >= self._combine_every:
            self._combine()

    def _size_buffer(self, chunk: list) -> None:
        self._sized = True
        sample = chunk[:_SIZE_SAMPLE]
        average = sum(
            _pair_size(pair) if is_pair(pair) else _TUPLE_OVERHEAD for pair in sample
        ) / len(sample)
        self._buffer_limit = max(
            1, min(self._spill_records, int(self._sort_buffer_bytes / average))
        )
        self._chunk_limit = min(_CHUNK_PAIRS, self._buffer_limit)

    def _group(self, pairs: list, ends: list) -> None:
        """Group pairs whose types counting could confuse (1 == 1.0 == True), one by one."""
        groups = self._groups
        get = groups.get
        for index, (key, value) in enumerate(pairs):
            if type(key) is not str:
                try:
                    key = _hashable_group_key(key)
                except RecordError as error:
                    raise _located(error, ends, index) from None
            values = get(key)
            if values is None:
                groups[key] = [value]
            else:
                values.append(value)

    def _count(self, chunk: list) -> bool:
        """Count the chunk's pairs into self._counts[(type(value), value)][key]; False (counting
        nothing) when its types could be confused by counting, or an item is not a pair."""
        counts = _counted_pairs(chunk)
        if counts is None:
            return False
        # Keyed by the key alone under each distinct value (a word count has one: 1), because a
        # lookup of a str is much cheaper than of a (key, value) tuple in a dict too big for the cache.
        pairs = list(counts)
        keys = list(map(itemgetter(0), pairs))
        values = list(map(itemgetter(1), pairs))
        if len(set(values)) == 1:
            value = values[0]
            _add_counts(self._counts.setdefault((type(value), value), {}), keys, counts.values())
            return True
        for (key, value), times in counts.items():
            key_counts = self._counts.setdefault((type(value), value), {})
            key_counts[key] = key_counts.get(key, 0) + times
        return True

    def _counted_keys(self) -> int:
        tallied = c_str_tally_size(self._tally) if self._tally is not None else 0
        return tallied + sum(map(len, self._counts.values()))

    def _drain_tally(self) -> None:
        """Add the str keys map_lines counted in C to self._counts."""
        if self._tally is not None:
            c_str_tally_drain(self._tally, self._counts)

    def close(self) -> MapOutput:
        """Combine and write what is buffered; return the files written. Calling it again returns the same."""
        if self._output is None:
            self.flush()
            self._combine_and_spill(last=True)
            runs = self._runs
            files = {partition: list(paths) for partition, paths in sorted(runs.files.items())}
            self._output = MapOutput(
                files, self._records_in, runs.records, runs.bytes_written, runs.stats()
            )
        return self._output

    def _combine_and_spill(self, last: bool = False) -> None:
        """Combine everything buffered and write it out as sorted runs; the `last` time (at
        close), with what combiner_final gives, after the last combine."""
        if self._combiner is not None:
            self._combine(final=True)
            if last and self._combiner_final is not None:
                final, self._combiner_final = self._combiner_final, None  # once per attempt
                self._add_uncombined(final(), "combiner_final")
        self._spill()

    def _add_uncombined(self, output, producer: str) -> None:
        """Put pairs into the buffered groups as they are (the combiner has had its last run)."""
        if output is None:
            return
        if not hasattr(output, "__iter__"):
            raise not_iterable_output(producer, output)
        groups = self._groups
        for out_key, value in as_pairs(output, producer):
            out_group = out_key if type(out_key) is str else _hashable_group_key(out_key)
            groups.setdefault(out_group, []).append(value)

    # -- combining ---------------------------------------------------------------------------------

    def _combine(self, final: bool = False) -> None:
        """Run the combiner over every buffered key with more than one value; spill when even the
        combined groups fill the buffer."""
        groups = self._groups
        self._combine_counted(groups)
        crowded = list(compress(groups.keys(), map((1).__lt__, map(len, groups.values()))))
        for group_key in crowded:
            self._combine_group(groups, group_key, iter(groups[group_key]))
        self._since_combine = 0
        if not final and len(groups) >= self._buffer_limit:
            self._spill()

    def _combine_counted(self, groups: dict) -> None:
        """Run the combiner over the counted pairs: a key counted n times gets its value n times
        (a repeat, not a list), after any values its group already holds; a key seen once joins
        the groups as it is. So a key's values reach the combiner grouped by value, not in the
        order the mapper yielded them: combiners must be commutative as well as associative."""
        self._drain_tally()
        counts, self._counts = self._counts, {}
        for (_, value), key_counts in counts.items():
            if c_combine_counts is not None:
                self._c_combine_counted(groups, key_counts, value)
                continue
            for key, times in key_counts.items():
                # Counted tuple keys are countable tuples: grouped as themselves.
                group_key = key if type(key) is str or type(key) is tuple else (type(key), key)
                held = groups.get(group_key)
                if held is None and times == 1:
                    groups[group_key] = [value]
                else:
                    self._combine_counted_key(groups, group_key, held, value, times)

    def _c_combine_counted(self, groups: dict, key_counts: dict, value) -> None:
        """_combine_counted's loop over one value's keys in C (_speedups.combine_counts), which
        leaves to Python each key whose group already holds values or whose combined output is
        anything but (the key, one value)."""
        assert c_combine_counts is not None
        position = 0
        while True:
            stop = c_combine_counts(self._combiner, key_counts, value, groups, position)
            if stop is None:
                return
            position, group_key, times, called, output = stop
            if called:
                self._add_combined(groups, group_key, _key_of_group(group_key), output)
            else:
                self._combine_counted_key(groups, group_key, groups.get(group_key), value, times)

    def _combine_counted_key(self, groups: dict, group_key, held, value, times: int) -> None:
        values: Iterator = (
            repeat(value, times) if held is None else chain(held, repeat(value, times))
        )
        self._combine_group(groups, group_key, values)

    def _combine_group(self, groups: dict, group_key, values: Iterator) -> None:
        """Replace the group's values by what the combiner makes of `values`."""
        key = _key_of_group(group_key)
        self._add_combined(groups, group_key, key, self._combiner(key, values))

    def _add_combined(self, groups: dict, group_key, key, output) -> None:
        """Put what the combiner gave for `key` in place of its group's values."""
        if output is None:
            raise RecordError(
                f"the combiner returned None for key {short_repr(key)}; it must return or yield "
                f"(key, value) pairs"
            )
        if not hasattr(output, "__iter__"):
            raise not_iterable_output("combiner", output)
        produced = list(output)  # drained by C: a combiner mostly yields one pair
        if len(produced) == 1:
            pair = produced[0]
            if type(pair) is tuple and len(pair) == 2:
                out_key = pair[0]
                if out_key is key or (type(out_key) is type(key) and out_key == key):
                    groups[group_key] = [pair[1]]  # the common case: (key, combined value)
                    return
        combined, others = [], []
        for pair in as_pairs(produced, "combiner"):
            out_key = pair[0]
            if out_key is key or (type(out_key) is type(key) and out_key == key):
                combined.append(pair[1])
            else:
                others.append(pair)  # any other key: partitioned at spill time like map output
        if combined:
            groups[group_key] = combined
        else:
            groups.pop(group_key, None)  # a counted key may have had no group yet
        for out_key, value in others:
            out_group = out_key if type(out_key) is str else _hashable_group_key(out_key)
            groups.setdefault(out_group, []).append(value)

    # -- spilling ----------------------------------------------------------------------------------

    def _spill(self) -> None:
        value_lists: Optional[list] = None  # with a combiner: each key's list of values
        if self._combiner is None:
            pairs, self._pairs = self._pairs, []
            keys = list(map(itemgetter(0), pairs))
            values = list(map(itemgetter(1), pairs))
            del pairs
        else:
            groups, self._groups = self._groups, {}
            keys = _keys_of_groups(list(groups))
            value_lists = list(groups.values())
            del groups
            values = list(chain.from_iterable(value_lists))
        if self._spilled_encoded(keys, values, value_lists):
            return
        if value_lists is not None and len(values) != len(keys):  # a key with several values
            keys = _repeated(keys, list(map(len, value_lists)))
        if not self._spilled_native(keys, values):
            self._write_by_partition(keys, values)

    def _spilled_native(self, keys: list, values: list) -> bool:
        """Spill str keys with str or int values by Arrow, or return False for others: each
        column is built in one C pass (_speedups.str_column, int64_column: no Python object per
        item, where pyarrow's conversion checks every item), the spill is ordered by partition
        and key (_spill_order), and a str value column is built in that order at once (rather
        than built and then gathered again by Arrow), written a partition slice at a time."""
        if c_str_column is None or not keys or type(keys[0]) is not str or self._runs.sort_values:
            return False
        key_array = _str_array(keys)
        if key_array is None or type(values[0]) not in (str, int):
            return False
        if self._num_partitions == 1:
            partitions = None
        elif isinstance(self._partitioner, RangePartitioner):  # by Arrow: no Python per key
            partitions = self._partitioner.partition_array(key_array, self._num_partitions)
        else:
            partitions = partitions_of(keys, self._num_partitions, self._partitioner)
        order, bounds = self._spill_order(key_array, partitions)
        if type(values[0]) is str:
            value_array = _str_array(values, order)
        else:
            value_array = _int64_array(values)
            value_array = value_array.take(order) if value_array is not None else None
        if value_array is None:
            return False
        table = pa.Table.from_arrays([key_array.take(order), value_array], names=["key", "value"])
        self._write_slices(table, bounds, "str")
        return True

    def _write_by_partition(self, keys: list, values: list) -> None:
        """Write each partition's keys and values, partitioned in bulk, as one sorted run."""
        if not keys:
            return
        if self._num_partitions == 1:
            self._runs.write_pairs(0, keys, values)
            return
        partitions = partitions_of(keys, self._num_partitions, self._partitioner)
        key_buckets: list[list] = [[] for _ in range(self._num_partitions)]
        value_buckets: list[list] = [[] for _ in range(self._num_partitions)]
        # list.append on each item's bucket, driven by map and drained by a zero-length deque.
        deque(map(list.append, map(key_buckets.__getitem__, partitions), keys), maxlen=0)
        deque(map(list.append, map(value_buckets.__getitem__, partitions), values), maxlen=0)
        for partition, bucket in enumerate(key_buckets):
            if bucket:
                self._runs.write_pairs(partition, bucket, value_buckets[partition])

    def _spilled_encoded(self, keys: list, values: list, value_lists: Optional[list]) -> bool:
        """Spill tuple keys of strs (bigrams) by Arrow, or return False for other keys: the keys'
        column of encodings and, for the default partitioner, their partitions (the partition
        stable_partition gives, from the encoded bytes) are made in one pass
        (partition.encoded_tuple_column), and one sort by partition and encoded key orders the
        whole spill, written a partition slice at a time. `values` are the keys' values in
        order; `value_lists`, with a combiner, the lists they came from (one per key)."""
        if not keys or type(keys[0]) is not tuple or self._runs.sort_values:
            return False
        num_partitions = self._num_partitions
        default = self._partitioner is None or self._partitioner is stable_partition
        column = encoded_tuple_column(keys, num_partitions if default else 1)
        if column is None:
            return False
        encoded, widest, partitions = column
        if not default and num_partitions > 1:
            partitions = partitions_of(keys, num_partitions, self._partitioner)
        if value_lists is not None and len(values) != len(keys):  # a key with several values
            counts = list(map(len, value_lists))
            rows = pa.array(_repeated(list(range(len(keys))), counts))
            encoded = encoded.take(rows)
            if isinstance(partitions, pa.Array):
                partitions = partitions.take(rows)
            elif partitions is not None:
                partitions = _repeated(partitions, counts)
        table = encoded_tuple_table(encoded, values, str_tuples_signature(widest))
        self._write_sorted(table, partitions, "tuple")
        return True

    def _write_sorted(self, table: pa.Table, partitions, key_type: str) -> None:
        """Write a spill's table as one run per partition (`partitions`: each row's, as a list or
        an int32 Arrow array, or None for all in partition 0), sorted by key."""
        order, bounds = self._spill_order(table.column("key"), partitions)
        self._write_slices(table.take(order), bounds, key_type)

    def _spill_order(self, keys: pa.Array, partitions) -> tuple:
        """(order, bounds): the indices that order a spill by partition and key, stably, and
        where each partition starts in that order (bounds[p]:bounds[p + 1]; None when
        `partitions` is None: all in partition 0). One stable sort by key (keysort.key_order),
        then, unless the partitions already follow the key order (as a range partitioner's
        do), a stable sort of the partition numbers."""
        order = key_order(keys)
        if partitions is None:
            return order, None
        ids = partitions if isinstance(partitions, pa.Array) else pa.array(partitions, pa.int32())
        ids = ids.take(order)
        rows = len(ids)
        if rows > 1 and not pc.all(pc.less_equal(ids.slice(0, rows - 1), ids.slice(1))).as_py():
            by_partition = pc.sort_indices(ids)  # stable: a partition's keys stay in order
            order, ids = order.take(by_partition), ids.take(by_partition)
        bounds = pc.search_sorted(
            ids, pa.array(range(self._num_partitions + 1), ids.type), side="left"
        ).to_pylist()
        return order, bounds

    def _write_slices(self, table: pa.Table, bounds: Optional[list], key_type: str) -> None:
        """Write a spill's ordered table: each partition's slice (by `bounds`) as one run."""
        if bounds is None:
            self._runs.write_table(0, table, key_type)
            return
        for partition in range(self._num_partitions):
            start, end = bounds[partition], bounds[partition + 1]
            if end > start:
                self._runs.write_table(partition, table.slice(start, end - start), key_type)


def _str_array(items: list, order: Optional[pa.Array] = None) -> Optional[pa.Array]:
    """A large_string array of exact strs from buffers made by C, or None (other items); the
    items taken in `order` (integer indices) when given."""
    assert c_str_column is not None
    if order is None:
        buffers = c_str_column(items)
    else:
        order = order.cast(pa.int64())
        buffers = c_str_column(items, order.buffers()[1].slice(8 * order.offset, 8 * len(order)))
    if buffers is None:
        return None
    offsets, data = buffers
    return pa.Array.from_buffers(
        pa.large_string(), len(items), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _int64_array(items: list) -> Optional[pa.Array]:
    """An int64 array of exact ints from a buffer made by C, or None (other items)."""
    assert c_int64_column is not None
    data = c_int64_column(items)
    if data is None:
        return None
    return pa.Array.from_buffers(pa.int64(), len(items), [None, pa.py_buffer(data)])


def _repeated(column: list, counts: list) -> list:
    """Each item of `column` as many times as its count says, in order."""
    return list(chain.from_iterable(map(repeat, column, counts)))
