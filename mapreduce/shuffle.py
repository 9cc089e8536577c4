"""The shuffle: map output partitioned by reducer, sorted by key, stored as Arrow IPC runs, and merged
back into key groups for each reducer.

A map task feeds its (key, value) pairs to a `MapOutputWriter`, which buffers them per partition and
writes each partition's buffer, sorted by key, as one "run" file whenever the buffer is full and at
close. A reduce task calls `iter_partition_groups` with every run of its partition (from every map
task) and gets the keys in increasing order, each with a lazy iterator over its values.

Run file format (one Arrow IPC file, `part-{partition:05d}-run-{n:03d}.arrow`):
  * two columns, `key` and `value`, in record batches of ARROW_BATCH_ROWS rows;
  * a column whose elements all have exactly one native type is stored natively (str -> large_string,
    int -> int64, float -> float64, bytes -> large_binary, bool -> bool_); any other column holds
    `pickle.dumps(x, protocol=5)` per element in large_binary, with field metadata {b"encoding": b"pickle"};
  * the schema metadata b"key_types" lists the names of the key types (JSON), so a reader knows which
    ordering the runs of a partition share without reading their data.

Ordering: keys of one type sort in Python order; as soon as a partition has keys of several types
(counted by type name) every key sorts by (type name, key). Keys are grouped when they have the same
type and are equal, so 1, 1.0 and True are three different keys.

The hot path is a word count, so per-record work is done by C-level iteration (map, zip, groupby,
Arrow conversions and sorts, and the counting loop of mapreduce/_speedups.c where it is built)
rather than by Python loops.
"""

from __future__ import annotations

import bisect
import heapq
import json
import os
import pickle
import struct
import sys
import zlib
from collections import Counter, deque
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress, groupby, islice, repeat
from operator import add, attrgetter, itemgetter
from typing import Callable, Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc

from mapreduce import storage

try:    # optional C version of the per-pair counting (setup.py builds it where a compiler exists)
    from mapreduce import _speedups
except ImportError:
    _speedups = None
from mapreduce.defaults import (ARROW_BATCH_ROWS, COMBINE_EVERY_RECORDS, SORT_BUFFER_BYTES,
                                SPILL_RECORDS)
from mapreduce.errors import RecordError
from mapreduce.pairs import as_pair, as_pairs, is_pair, short_repr

_SIZE_SAMPLE = 1000        # pairs measured to turn the sort buffer's bytes into a record limit
_TUPLE_OVERHEAD = 56 + 8   # a 2-tuple plus its slot in the buffer list


def _pair_size(pair: tuple) -> int:
    return _TUPLE_OVERHEAD + sys.getsizeof(pair[0]) + sys.getsizeof(pair[1])


_KEY_TYPES_METADATA = b"key_types"
_PICKLE_METADATA = {b"encoding": b"pickle"}
_NATIVE_ARROW_TYPES = {
    str: pa.large_string(),
    int: pa.int64(),
    float: pa.float64(),
    bytes: pa.large_binary(),
    bool: pa.bool_(),
}
_dumps = partial(pickle.dumps, protocol=5)


# ---------------------------------------------------------------------------------------------------
# Partitioning


def stable_partition(key, num_partitions: int) -> int:
    """The default partitioner: the same partition for the same key in every process and run, which
    hash() does not give (it is salted per process by PYTHONHASHSEED)."""
    if type(key) is str:
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % num_partitions
    return zlib.crc32(key_bytes(key)) % num_partitions


def key_bytes(key) -> bytes:
    """The bytes stable_partition hashes for a non-str key: the bytes themselves for bytes, otherwise the
    key's type followed by a canonical encoding of its value (the type is included because keys of
    different types are different keys even when ==, like 1 and True)."""
    key_type = type(key)
    if key_type is bytes:
        return key
    if key_type is int:
        return _INT_PREFIX + b"%d" % key
    return _type_tag(key_type) + _canonical(key)


_type_tags: dict = {}


def _type_tag(key_type: type) -> bytes:
    tag = _type_tags.get(key_type)
    if tag is None:
        tag = f"{key_type.__module__}.{key_type.__qualname__}".encode("utf-8", "surrogatepass") + b"\0"
        _type_tags[key_type] = tag
    return tag


_INT_PREFIX = _type_tag(int) + b"n"
_LENGTH = struct.Struct(">I")


def _canonical(value) -> bytes:
    """An encoding that is equal for equal values. Inside a container numbers are encoded by value
    alone, because (1,) == (True,) == (1.0,) group together as keys and so must partition together;
    set and dict members are sorted by their encoding so iteration order does not matter."""
    if value is None:
        return b"N"
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
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
        return b"D" + _joined(sorted(_joined((_canonical(k), _canonical(v))) for k, v in value.items()))
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
            f"or a simpler key") from cause


def _joined(encodings: Iterable[bytes]) -> bytes:
    # Length-prefixed so that no two different sequences of encodings give the same bytes.
    return b"".join(_LENGTH.pack(len(encoding)) + encoding for encoding in encodings)


def _stable_partitions(keys: list, key_types: set, num_partitions: int) -> list:
    """stable_partition over a chunk of keys, computed by C-level map chains for all-str or all-int keys."""
    to_partition = num_partitions.__rmod__
    if key_types == {str}:
        encoded = map(str.encode, keys, repeat("utf-8"), repeat("surrogatepass"))
        return list(map(to_partition, map(zlib.crc32, encoded)))
    if key_types == {int}:
        encoded = map(_INT_PREFIX.__add__, map(b"%d".__mod__, keys))
        return list(map(to_partition, map(zlib.crc32, encoded)))
    return list(map(stable_partition, keys, repeat(num_partitions)))


# ---------------------------------------------------------------------------------------------------
# Ordering (shared by the writer's sort and the reader's merge, so they agree exactly)


def mixed_type_sort_key(key) -> tuple:
    """The order of keys of several types: by type name, then by value within a type."""
    return (type(key).__name__, key)


def sort_key_for(keys_types: set) -> Optional[Callable]:
    """The sort key for keys of these types: None (sort by the key itself) for one type, else
    mixed_type_sort_key."""
    return _sort_key_for_names({key_type.__name__ for key_type in keys_types})


def _sort_key_for_names(type_names: set) -> Optional[Callable]:
    # None keys do not support <, but (name, None) tuples compare equal without calling it.
    if len(type_names) > 1 or "NoneType" in type_names:
        return mixed_type_sort_key
    return None


def _pair_sort_key(order: Optional[Callable]) -> Callable:
    if order is None:
        return itemgetter(0)
    return lambda pair: order(pair[0])


def _unorderable(type_names: Iterable[str], cause: Exception) -> RecordError:
    names = ", ".join(sorted(set(type_names)))
    return RecordError(
        f"keys of type {names} cannot be ordered: {cause}; keys must be orderable "
        f"(str, int, float, bytes, bool, or tuples of those)")


def _sort_pairs_by_key(pairs: list) -> None:
    """Sort (key, x) pairs in place by key, stably so equal keys keep their values' order."""
    key_types = set(map(type, map(itemgetter(0), pairs)))
    try:
        pairs.sort(key=_pair_sort_key(sort_key_for(key_types)))
    except TypeError as cause:
        raise _unorderable((key_type.__name__ for key_type in key_types), cause) from cause


# ---------------------------------------------------------------------------------------------------
# Writing


@dataclass
class MapOutput:
    """What a map task wrote: partition -> its run files (absolute paths; partitions without data absent)."""

    files: dict
    records_in: int
    records_out: int
    bytes_written: int


def _hashable_group_key(key):
    """The dict key that groups `key`: 1, 1.0 and True are equal with equal hashes but are different
    keys here, so a non-str key is grouped under (type, key)."""
    try:
        hash(key)
    except TypeError as cause:
        raise RecordError(
            f"a key of type {type(key).__name__} cannot be used with a combiner: it is not hashable "
            f"({cause}); use hashable keys such as str, int or tuples") from None
    return (type(key), key)


def _key_of_group(group_key):
    return group_key if type(group_key) is str else group_key[1]


def check_picklable(item, role: str) -> None:
    """The RecordError every path gives for a key or value (`role`) that cannot be pickled (the
    shuffle pickles what has no native Arrow type)."""
    try:
        _dumps(item)
    except Exception as cause:
        raise RecordError(
            f"a {role} of type {type(item).__name__} cannot be pickled: {cause}") from cause


def _pickled(column: list, role: str) -> list:
    try:
        return list(map(_dumps, column))
    except Exception as cause:
        for item in column:
            check_picklable(item, role)     # raises for the first that cannot be pickled
        raise RecordError(f"a {role} cannot be pickled: {cause}") from cause


_NATIVE_TYPES = frozenset(_NATIVE_ARROW_TYPES)     # always stored natively or pickled fine


def checked_as_shuffled(pairs: Iterable, producer: str = "mapper") -> Iterator[tuple]:
    """The pairs, refused as the shuffle refuses them, for output that does not go through it (a
    map-only job's): RecordError for an item that is not a pair, or for a key or value that cannot
    be pickled, with the same messages. So a job cannot write, say, a lambda's repr (a memory
    address, different in every run) without a reducer and be refused with one."""
    for pair in as_pairs(pairs, producer):
        if type(pair[0]) not in _NATIVE_TYPES:
            check_picklable(pair[0], "key")
        if type(pair[1]) not in _NATIVE_TYPES:
            check_picklable(pair[1], "value")
        yield pair


def _encoded_column(column: list, role: str):
    """(Arrow array, field metadata, element types) for one column of a run."""
    types = set(map(type, column))
    if len(types) == 1:
        arrow_type = _NATIVE_ARROW_TYPES.get(next(iter(types)))
        if arrow_type is not None:
            try:
                return pa.array(column, type=arrow_type), None, types
            except (OverflowError, UnicodeError, pa.ArrowException):
                pass  # ints beyond int64 or strs with lone surrogates: pickle carries them exactly
    return pa.array(_pickled(column, role), type=pa.large_binary()), _PICKLE_METADATA, types


def _run_table(keys: list, values: list) -> pa.Table:
    key_array, key_metadata, key_types = _encoded_column(keys, "key")
    value_array, value_metadata, _ = _encoded_column(values, "value")
    key_type_names = json.dumps(sorted({key_type.__name__ for key_type in key_types}))
    schema = pa.schema(
        [pa.field("key", key_array.type, metadata=key_metadata),
         pa.field("value", value_array.type, metadata=value_metadata)],
        metadata={_KEY_TYPES_METADATA: key_type_names.encode("utf-8")})
    return pa.Table.from_arrays([key_array, value_array], schema=schema)


# Keys Arrow sorts in Python's order once stored natively: UTF-8 byte order is code point order,
# and int64, binary and bool compare as in Python. (Floats are left to Python: NaN has no place
# in its order.)
_ARROW_SORTED_KEY_TYPES = {str, int, bytes, bool}


def _sorted_run_table(keys: list, values: list) -> pa.Table:
    """A run's table sorted by key, stably (a key's values keep their order): by Arrow when all
    keys have one of the types above and were stored natively, else by sorting the pairs in
    Python before they are encoded (tuples, mixed types, floats, ints beyond int64)."""
    key_types = set(map(type, keys))
    if len(key_types) == 1 and key_types <= _ARROW_SORTED_KEY_TYPES:
        table = _run_table(keys, values)
        if table.schema.field("key").metadata is None:
            return table.take(pc.sort_indices(table.column("key")))
    pairs = list(zip(keys, values))
    _sort_pairs_by_key(pairs)
    return _run_table(list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs)))


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _write_table_atomically(table: pa.Table, path: str) -> int:
    """Write under a temporary name and rename, so a crash never leaves a partial file under `path`."""
    if storage.is_uri(path):
        return _write_table_to_object(table, path)
    temporary = path + ".tmp"
    try:
        with pa.OSFile(temporary, "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=ARROW_BATCH_ROWS)
            size = sink.tell()
        os.replace(temporary, path)
    except BaseException:
        _remove_quietly(temporary)
        raise
    return size


_CHUNK_PAIRS = 2048     # items per C-level pass: small enough that a chunk stays in the CPU cache

# A chunk whose keys and values all have exactly these types (keys may also be exact tuples of
# them, such as bigrams) is counted as whole (key, value) tuples: no two values of different types
# here compare equal, so counting never merges 1 with 1.0 or True, or a str with a str subclass,
# and equal pairs are interchangeable. mapreduce/_speedups.c accepts exactly the same.
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
        if not item_types <= _COUNTABLE and not (item_types <= _COUNTABLE_OR_TUPLE
                                                 and _countable_tuple_keys(chunk)):
            return None
        counts = Counter(chunk)
    except TypeError:           # an item that is not iterable, or not hashable (a list)
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
    lists_seen = set()
    for index, item in enumerate(chunk):
        if type(item) is not tuple or len(item) != 2:      # as_pair returns a plain pair as it is
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
            f"list or a tuple for each pair (the framework reads pairs after the mapper moves on)")
    lists_seen.add(id(item))


def _located(error: RecordError, ends: list, index: int) -> RecordError:
    """Say which add_pairs call added item `index` of a chunk: `ends` holds the chunk's length
    after each call, the last entry being the current call's."""
    error.records_ago = len(ends) - 1 - bisect.bisect_right(ends, index)
    return error


def _write_table_to_object(table: pa.Table, location: str) -> int:
    """The same file written to a URI: an object store shows an object only once it is closed
    whole, so no temporary name is needed (and a rename there would be a copy)."""
    with storage.open_output_stream(location) as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=ARROW_BATCH_ROWS)
        return sink.tell()


def open_run_file(path: str):
    """A run file for reading: memory-mapped when local, ranged reads from a URI."""
    return storage.open_input_file(path) if storage.is_uri(path) else pa.memory_map(path, "r")


class MapOutputWriter:
    """Buffers one map attempt's output and writes it as sorted Arrow runs in `directory`.

    A record's pairs are appended to a pending chunk by C code (list.extend), then checked and
    (with a combiner) counted a chunk at a time by C-level passes, so on the common path (str,
    bytes, int or None keys and values) no Python statement runs per pair. Partitioning, sorting
    and encoding happen in bulk at spill time, and with a combiner the partitioner runs once per
    distinct key."""

    def __init__(self, directory: str, num_partitions: int, partitioner=None, combiner=None,
                 spill_records: int = SPILL_RECORDS, combine_every: int = COMBINE_EVERY_RECORDS,
                 sort_buffer_bytes: int = SORT_BUFFER_BYTES):
        if num_partitions < 1:
            raise ValueError(f"num_partitions must be at least 1, not {num_partitions}")
        self._directory = storage.absolute(directory)
        self._num_partitions = num_partitions
        self._partitioner = partitioner if partitioner is not None else stable_partition
        self._combiner = combiner
        self._spill_records = max(1, spill_records)
        self._combine_every = max(1, combine_every)
        self._pending: list = []      # the current chunk: items as the mapper yielded them, unchecked
        self._ends: list = []         # len(_pending) after each add_pairs call, to locate a bad item
        self._pairs: list = []        # without a combiner: checked (key, value) tuples in arrival order
        self._counts: dict = {}       # with one: (type, value) -> {key: times seen}, for countable chunks
        self._groups: dict = {}       # ...and group key (see _hashable_group_key) -> list of values
        self._since_combine = 0
        self._files: dict = {}
        self._records_in = 0
        self._records_out = 0
        self._bytes_written = 0
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

    def flush(self) -> None:
        """Check and absorb the pending chunk now (close does it too)."""
        if self._pending:
            self._absorb_pending()

    def _absorb_pending(self) -> None:
        chunk, ends = self._pending, self._ends
        self._pending, self._ends = [], [0]     # 0: the current call's items start the next chunk
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
        # The C loop (mapreduce/_speedups.c) counts exactly what the Python one would.
        if (_speedups is not None and _speedups.count_pairs(chunk, self._counts)) or self._count(chunk):
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
        average = sum(_pair_size(pair) if is_pair(pair) else _TUPLE_OVERHEAD for pair in sample) / len(sample)
        self._buffer_limit = max(1, min(self._spill_records, int(self._sort_buffer_bytes / average)))
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
        return sum(map(len, self._counts.values()))

    def close(self) -> MapOutput:
        """Combine and write what is buffered; return the files written. Calling it again returns the same."""
        if self._output is None:
            self.flush()
            self._combine_and_spill()
            files = {partition: list(paths) for partition, paths in sorted(self._files.items())}
            self._output = MapOutput(files, self._records_in, self._records_out, self._bytes_written)
        return self._output

    def _combine_and_spill(self) -> None:
        """Combine everything buffered and write it out as sorted runs."""
        if self._combiner is not None:
            self._combine(final=True)
        self._spill()

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
        counts, self._counts = self._counts, {}
        for (_, value), key_counts in counts.items():
            for key, times in key_counts.items():
                group_key = key if type(key) is str else (type(key), key)
                held = groups.get(group_key)
                if held is None:
                    if times == 1:
                        groups[group_key] = [value]
                        continue
                    values = repeat(value, times)
                else:
                    values = chain(held, repeat(value, times))
                self._combine_group(groups, group_key, values)

    def _combine_group(self, groups: dict, group_key, values: Iterator) -> None:
        """Replace the group's values by what the combiner makes of `values`."""
        key = _key_of_group(group_key)
        output = self._combiner(key, values)
        if output is None:
            raise RecordError(
                f"the combiner returned None for key {short_repr(key)}; it must return or yield "
                f"(key, value) pairs")
        combined, others = [], []
        for pair in as_pairs(output, "combiner"):
            out_key = pair[0]
            if out_key is key or (type(out_key) is type(key) and out_key == key):
                combined.append(pair[1])
            else:
                others.append(pair)          # any other key: partitioned at spill time like map output
        if combined:
            groups[group_key] = combined
        else:
            groups.pop(group_key, None)        # a counted key may have had no group yet
        for out_key, value in others:
            out_group = out_key if type(out_key) is str else _hashable_group_key(out_key)
            groups.setdefault(out_group, []).append(value)

    # -- spilling ----------------------------------------------------------------------------------

    def _spill(self) -> None:
        if self._combiner is None:
            pairs, self._pairs = self._pairs, []
            for partition, part in self._by_partition(pairs, list(map(itemgetter(0), pairs))):
                self._write_run(partition, list(map(itemgetter(0), part)), list(map(itemgetter(1), part)))
        else:
            groups, self._groups = self._groups, {}
            keyed_lists = list(zip(map(_key_of_group, groups), groups.values()))
            for partition, part in self._by_partition(keyed_lists, list(map(itemgetter(0), keyed_lists))):
                value_lists = list(map(itemgetter(1), part))
                keys = list(chain.from_iterable(map(repeat, map(itemgetter(0), part), map(len, value_lists))))
                self._write_run(partition, keys, list(chain.from_iterable(value_lists)))

    def _by_partition(self, items: list, keys: list) -> list:
        """[(partition, its items)] for the partitions that have any, computed in bulk."""
        if not items:
            return []
        if self._num_partitions == 1:
            return [(0, items)]
        partitions = self._partitions_of(keys, set(map(type, keys)))
        buckets = [[] for _ in range(self._num_partitions)]
        # list.append on each item's bucket, driven by map and drained by a zero-length deque.
        deque(map(list.append, map(buckets.__getitem__, partitions), items), maxlen=0)
        return [(partition, bucket) for partition, bucket in enumerate(buckets) if bucket]

    def _partitions_of(self, keys: list, key_types: set) -> list:
        if self._partitioner is stable_partition:
            return _stable_partitions(keys, key_types, self._num_partitions)
        partitions = list(map(self._partitioner, keys, repeat(self._num_partitions)))
        self._check_partitions(partitions, keys)
        return partitions

    def _check_partitions(self, partitions: list, keys: list) -> None:
        # Only the distinct partition numbers are checked, so this costs a set() per spill.
        for partition in set(partitions):
            if type(partition) is not int or not 0 <= partition < self._num_partitions:
                key = keys[partitions.index(partition)]
                raise RecordError(
                    f"the partitioner returned {short_repr(partition)} for key {short_repr(key)}; "
                    f"it must return an int in range(0, {self._num_partitions})")

    def _write_run(self, partition: int, keys: list, values: list) -> None:
        runs = self._files.setdefault(partition, [])
        path = storage.join(self._directory, f"part-{partition:05d}-run-{len(runs):03d}.arrow")
        self._bytes_written += _write_table_atomically(_sorted_run_table(keys, values), path)
        runs.append(path)
        self._records_out += len(keys)


# ---------------------------------------------------------------------------------------------------
# Reading


class ShuffleReadError(Exception):
    """A map output file is missing, unreadable or corrupt; `.path` names it."""

    def __init__(self, path: str, cause):
        self.path = path
        self.cause = cause
        super().__init__(path, cause)

    def __str__(self) -> str:
        return f"cannot read map output file {self.path}: {self.cause}"

    def __reduce__(self):
        # The cause travels as text: an arbitrary exception object may not survive pickling.
        cause = self.cause if isinstance(self.cause, str) else f"{type(self.cause).__name__}: {self.cause}"
        return (ShuffleReadError, (self.path, cause))


def _unpickled(array: pa.Array) -> list:
    return list(map(pickle.loads, array.to_pylist()))


def _column_decoder(field: pa.Field) -> Callable:
    if field.metadata and field.metadata.get(b"encoding") == b"pickle":
        return _unpickled
    return pa.Array.to_pylist


class _Run:
    """One run file opened for reading: its schema is read now, its batches on demand."""

    def __init__(self, path: str):
        self.path = path
        self._source = None
        try:
            self._source = open_run_file(path)
            self._reader = pa.ipc.open_file(self._source)
            schema = self._reader.schema
            if schema.names != ["key", "value"] or _KEY_TYPES_METADATA not in (schema.metadata or {}):
                raise ValueError("not a shuffle run file (no key and value columns with key type metadata)")
            self.key_type_names = set(json.loads(schema.metadata[_KEY_TYPES_METADATA]))
        except Exception as cause:
            if self._source is not None:
                self._source.close()
            raise ShuffleReadError(path, cause) from cause
        self.key_field, self.value_field = schema.field(0), schema.field(1)
        self.keys_pickled = _column_decoder(self.key_field) is _unpickled
        self._decode_key = _column_decoder(self.key_field)
        self.decode_value = _column_decoder(self.value_field)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The run's record batches, checked; the file is closed after the last one."""
        with self._source:
            for index in range(self._reader.num_record_batches):
                try:
                    batch = self._reader.get_batch(index)
                    batch.validate(full=True)  # corrupt offsets must fail here, not crash a conversion
                except Exception as cause:
                    raise ShuffleReadError(self.path, cause) from cause
                yield batch

    def decoded(self, batch: pa.RecordBatch) -> Iterator[tuple]:
        """The (key, value) pairs of one of this run's batches as Python objects."""
        try:
            return zip(self._decode_key(batch.column(0)), self.decode_value(batch.column(1)))
        except Exception as cause:
            raise ShuffleReadError(self.path, cause) from cause

    def records(self) -> Iterator[tuple]:
        """All (key, value) pairs, decoding one batch at a time."""
        return chain.from_iterable(map(self.decoded, self.batches()))

    def count_records(self) -> int:
        with self._source:
            try:
                return sum(self._reader.get_batch(index).num_rows
                           for index in range(self._reader.num_record_batches))
            except Exception as cause:
                raise ShuffleReadError(self.path, cause) from cause


# Binary search in Arrow where this pyarrow has it (recent versions); otherwise count with a vectorised
# comparison, which is linear in the batch but still C++.
_search_sorted = getattr(pc, "search_sorted", None)


def _count_through(sorted_keys: pa.Array, bound: pa.Scalar) -> int:
    """How many of the sorted keys are <= bound."""
    if _search_sorted is not None:
        return _search_sorted(sorted_keys, bound, side="right").as_py()
    return pc.sum(pc.less_equal(sorted_keys, bound)).as_py() or 0


class _ArrowCursor:
    """The merge's position in one run: the not yet merged rest of its current batch."""

    __slots__ = ("run", "_batches", "batch", "last_key")

    def __init__(self, run: _Run):
        self.run = run
        self._batches = run.batches()

    def next_batch(self) -> bool:
        """Move to the run's next non-empty batch; False when the run is exhausted."""
        for batch in self._batches:
            if batch.num_rows:
                self.batch = batch
                self.last_key = batch.column(0)[-1].as_py()
                return True
        return False

    def has_more(self) -> bool:
        return self.batch.num_rows > 0 or self.next_batch()

    def take_through(self, bound: pa.Scalar, whole: bool) -> pa.RecordBatch:
        count = self.batch.num_rows if whole else _count_through(self.batch.column(0), bound)
        taken, self.batch = self.batch.slice(0, count), self.batch.slice(count)
        return taken

    def rest(self) -> Iterator[pa.RecordBatch]:
        yield self.batch
        yield from self._batches


def _next_pieces(cursors: list) -> list:
    """From every run's current batch, the records up to the smallest of the batches' last keys:
    nothing later in any run sorts before those, so once sorted together they can be emitted.
    Returns (run, batch slice) pieces."""
    bounding = min(cursors, key=attrgetter("last_key"))
    bound = bounding.batch.column(0)[-1]
    # The bounding run gives its whole batch, so the merge progresses even if keys compare oddly (NaN).
    return [(cursor.run, cursor.take_through(bound, whole=cursor is bounding)) for cursor in cursors]


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


def _sorted_piece_slices(pieces: list) -> Iterator[tuple]:
    """The pieces merged into key order by Arrow (a stable sort, so equal keys keep their run
    order), as (pieces, key slice, value slice) of at most ARROW_BATCH_ROWS rows."""
    pieces = [(run, batch) for run, batch in pieces if batch.num_rows]
    if len(pieces) == 1:
        keys, values = pieces[0][1].column(0), pieces[0][1].column(1)
    else:
        keys = pa.concat_arrays([batch.column(0) for _, batch in pieces])
        values = pa.concat_arrays([batch.column(1) for _, batch in pieces])
        order = pc.sort_indices(keys)
        keys, values = keys.take(order), values.take(order)
    for start in range(0, len(keys), ARROW_BATCH_ROWS):
        yield pieces, keys.slice(start, ARROW_BATCH_ROWS), values.slice(start, ARROW_BATCH_ROWS)


def _sorted_piece_records(pieces: list, decode_value: Callable) -> Iterator[Iterator[tuple]]:
    """_sorted_piece_slices decoded to Python a batch at a time."""
    for pieces, key_slice, value_slice in _sorted_piece_slices(pieces):
        yield zip(_decoded_or_blamed(pa.Array.to_pylist, key_slice, pieces, 0),
                  _decoded_or_blamed(decode_value, value_slice, pieces, 1))


def _arrow_merged_slices(runs: list) -> Iterator[tuple]:
    """The k-way merge done by Arrow, for runs whose keys are all stored natively with one Arrow type
    (whose sort order is Python's: UTF-8 byte order is code point order). Every round merges what is
    certainly next from all runs with one C++ sort, instead of a Python step per record as heapq.merge
    takes; memory stays at one (memory-mapped) batch per run plus one merged batch."""
    cursors = [cursor for cursor in map(_ArrowCursor, runs) if cursor.next_batch()]
    while len(cursors) > 1:
        yield from _sorted_piece_slices(_next_pieces(cursors))
        cursors = [cursor for cursor in cursors if cursor.has_more()]
    for cursor in cursors:
        for batch in cursor.rest():
            yield from _sorted_piece_slices([(cursor.run, batch)])


def _arrow_merged_records(runs: list) -> Iterator[Iterator[tuple]]:
    decode_value = runs[0].decode_value
    for pieces, key_slice, value_slice in _arrow_merged_slices(runs):
        yield zip(_decoded_or_blamed(pa.Array.to_pylist, key_slice, pieces, 0),
                  _decoded_or_blamed(decode_value, value_slice, pieces, 1))


def iter_partition_slices(paths: list) -> Iterator[tuple]:
    """One partition's rows merged in key order as (keys, values) Arrow slices, for reduces that
    need no Python per record. Only for runs Arrow can merge (native keys of one type, the same
    value type), which is what the vectorised map writes; raises ValueError otherwise."""
    runs = [_Run(path) for path in paths]
    if not runs:
        return
    type_names = set().union(*(run.key_type_names for run in runs))
    if not _arrow_mergeable(runs, _sort_key_for_names(type_names)):
        raise ValueError("these runs cannot be merged by Arrow")
    for _, key_slice, value_slice in _arrow_merged_slices(runs):
        yield key_slice, value_slice


def _arrow_mergeable(runs: list, order: Optional[Callable]) -> bool:
    """Whether Arrow can merge these runs: one native key type, and value columns that concatenate."""
    if order is not None:
        return False
    first = runs[0]
    return all(not run.keys_pickled and run.key_field.type == first.key_field.type
               and run.value_field.equals(first.value_field, check_metadata=True) for run in runs)


def _heap_merged_records(runs: list, order: Optional[Callable], type_names: set) -> Iterator[tuple]:
    """The general k-way merge (pickled or mixed-type keys), in Python order via heapq.merge."""
    merged = heapq.merge(*(run.records() for run in runs), key=_pair_sort_key(order))
    try:
        yield from merged
    except TypeError as cause:
        raise _unorderable(type_names, cause) from cause


def _merged_records(runs: list, order: Optional[Callable], type_names: set) -> Iterator[tuple]:
    if _arrow_mergeable(runs, order):
        return chain.from_iterable(_arrow_merged_records(runs))
    return _heap_merged_records(runs, order, type_names)


def _type_and_key(pair: tuple) -> tuple:
    return (type(pair[0]), pair[0])


def iter_partition_groups(paths: list) -> Iterator[tuple]:
    """Merge the sorted runs of one partition and yield (key, values) in increasing key order, where
    values is a lazy iterator (consume or skip it before asking for the next group). A missing or
    corrupt run raises ShuffleReadError naming it."""
    runs = [_Run(path) for path in paths]
    if not runs:
        return
    type_names = set().union(*(run.key_type_names for run in runs))
    order = _sort_key_for_names(type_names)
    records = _merged_records(runs, order, type_names)
    if order is None:
        for key, group in groupby(records, itemgetter(0)):
            yield key, map(itemgetter(1), group)
    else:
        # Several key types: equal keys of different types (1 and True) must not share a group.
        for (_, key), group in groupby(records, _type_and_key):
            yield key, map(itemgetter(1), group)


def count_records(paths: Iterable[str]) -> int:
    """The number of records in these run files, from their batch headers (no data is decoded)."""
    return sum(_Run(path).count_records() for path in paths)
