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

The hot path is a word count, so per-record work is done by C-level iteration (map, zip, sort, groupby,
Arrow conversions) rather than by Python loops.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zlib
from bisect import bisect_right
from collections import defaultdict, deque
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress, groupby, islice, repeat
from operator import attrgetter, itemgetter
from typing import Callable, Iterable, Iterator, Optional

import pyarrow as pa

from mapreduce.defaults import ARROW_BATCH_ROWS, COMBINE_EVERY_RECORDS, SPILL_RECORDS
from mapreduce.errors import RecordError

# add_pairs takes a mapper's output this many records at a time: large enough that the per-chunk
# Python overhead vanishes, small enough that the chunk itself is a negligible amount of memory.
_CHUNK_RECORDS = 64 * 1024

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


def _short_repr(value) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object with a failing repr>"
    return text if len(text) <= 80 else text[:77] + "..."


def _is_pair(item) -> bool:
    return isinstance(item, (tuple, list)) and len(item) == 2


def _not_a_pair(item, producer: str) -> RecordError:
    return RecordError(
        f"the {producer} yielded {_short_repr(item)} of type {type(item).__name__}; "
        f"it must yield (key, value) pairs")


def _checked_pairs(chunk: list) -> list:
    """The chunk as a list of (key, value) tuples, or RecordError naming the first item that is not a pair."""
    if set(map(type, chunk)) == {tuple} and set(map(len, chunk)) == {2}:
        return chunk
    for item in chunk:
        if not _is_pair(item):
            raise _not_a_pair(item, "mapper")
    # Lists (and tuple subclasses) become plain tuples: a mapper may reuse and mutate a list it yielded.
    return list(map(tuple, chunk))


def _group_key(key):
    # 1, 1.0 and True are equal with equal hashes but are different keys here, so a non-str key is
    # grouped under (type, key); str keys, the common case, stay as they are.
    return key if type(key) is str else (type(key), key)


def _group_keys(keys: list, key_types: set) -> Iterable:
    if key_types == {str}:
        return keys
    if str not in key_types:
        return zip(map(type, keys), keys)
    return list(map(_group_key, keys))


def _key_of_group(group_key):
    return group_key if type(group_key) is str else group_key[1]


def _unhashable(keys: Iterable, cause: Exception) -> RecordError:
    for key in keys:
        try:
            hash(key)
        except TypeError:
            return RecordError(
                f"a key of type {type(key).__name__} cannot be used with a combiner: it is not hashable "
                f"({cause}); use hashable keys such as str, int or tuples")
    return RecordError(f"a key cannot be used with a combiner: {cause}")


def _pickled(column: list, role: str) -> list:
    try:
        return list(map(_dumps, column))
    except Exception as cause:
        for item in column:
            try:
                _dumps(item)
            except Exception as item_cause:
                raise RecordError(
                    f"a {role} of type {type(item).__name__} cannot be pickled: {item_cause}") from item_cause
        raise RecordError(f"a {role} cannot be pickled: {cause}") from cause


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


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _write_table_atomically(table: pa.Table, path: str) -> int:
    """Write under a temporary name and rename, so a crash never leaves a partial file under `path`."""
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


class MapOutputWriter:
    """Buffers one map attempt's output per partition and writes it as sorted Arrow runs in `directory`."""

    def __init__(self, directory: str, num_partitions: int, partitioner=None, combiner=None,
                 spill_records: int = SPILL_RECORDS, combine_every: int = COMBINE_EVERY_RECORDS):
        if num_partitions < 1:
            raise ValueError(f"num_partitions must be at least 1, not {num_partitions}")
        self._directory = os.path.abspath(directory)
        self._num_partitions = num_partitions
        self._partitioner = partitioner if partitioner is not None else stable_partition
        self._combiner = combiner
        self._spill_records = max(1, spill_records)
        self._combine_every = max(1, combine_every)
        # Without a combiner: per partition, a list of (key, value). With one: per partition,
        # group key -> list of values.
        self._pairs = [[] for _ in range(num_partitions)]
        self._groups = [defaultdict(list) for _ in range(num_partitions)]
        self._buffered = 0
        self._added_since_combine = 0
        self._files: dict = {}
        self._records_in = 0
        self._records_out = 0
        self._bytes_written = 0
        self._output: Optional[MapOutput] = None

    # -- adding ------------------------------------------------------------------------------------

    def add(self, key, value) -> None:
        self._check_open()
        self._records_in += 1
        if self._combiner is None:
            self._pairs[self._partition_of(key)].append((key, value))
        else:
            self._group_one(key, value)
        self._after_buffering(1)

    def add_pairs(self, pairs: Iterable) -> None:
        """Add a mapper's output; every item must be a (key, value) 2-tuple or 2-list."""
        self._check_open()
        source = iter(pairs)
        while True:
            chunk = list(islice(source, self._room()))
            if not chunk:
                return
            self._records_in += len(chunk)
            self._buffer_chunk(_checked_pairs(chunk))
            self._after_buffering(len(chunk))

    def close(self) -> MapOutput:
        """Combine and write what is buffered; return the files written. Calling it again returns the same."""
        if self._output is None:
            if self._combiner is not None:
                self._combine()
            self._spill()
            files = {partition: list(paths) for partition, paths in sorted(self._files.items())}
            self._output = MapOutput(files, self._records_in, self._records_out, self._bytes_written)
        return self._output

    def _check_open(self) -> None:
        if self._output is not None:
            raise ValueError("this MapOutputWriter is closed")

    def _room(self) -> int:
        """How many records may be buffered before the next combine or spill is due."""
        room = self._spill_records - self._buffered
        if self._combiner is not None:
            room = min(room, self._combine_every - self._added_since_combine)
        return max(1, min(room, _CHUNK_RECORDS))

    def _buffer_chunk(self, pairs: list) -> None:
        keys = list(map(itemgetter(0), pairs))
        key_types = set(map(type, keys))
        partitions = self._partitions_of(keys, key_types)
        if self._combiner is None:
            self._append_pairs(partitions, pairs)
        else:
            self._group_pairs(partitions, keys, key_types, pairs)

    def _append_pairs(self, partitions: Optional[list], pairs: list) -> None:
        if partitions is None:
            self._pairs[0].extend(pairs)
            return
        # list.append on each record's partition buffer, driven by map and drained by a zero-length
        # deque: the distribution runs in C rather than as a Python loop per record.
        deque(map(list.append, map(self._pairs.__getitem__, partitions), pairs), maxlen=0)

    def _group_pairs(self, partitions: Optional[list], keys: list, key_types: set, pairs: list) -> None:
        if partitions is None:
            group_dicts = repeat(self._groups[0])
        else:
            group_dicts = map(self._groups.__getitem__, partitions)
        value_lists = map(dict.__getitem__, group_dicts, _group_keys(keys, key_types))  # defaultdict: new lists
        try:
            deque(map(list.append, value_lists, map(itemgetter(1), pairs)), maxlen=0)
        except TypeError as cause:
            raise _unhashable(keys, cause) from cause

    def _group_one(self, key, value) -> None:
        groups = self._groups[self._partition_of(key)]
        try:
            groups[_group_key(key)].append(value)
        except TypeError as cause:
            raise _unhashable([key], cause) from cause

    # -- partitioning ------------------------------------------------------------------------------

    def _partitions_of(self, keys: list, key_types: set) -> Optional[list]:
        """Each key's partition, or None when there is only partition 0."""
        if self._num_partitions == 1:
            return None
        if self._partitioner is stable_partition:
            return _stable_partitions(keys, key_types, self._num_partitions)
        partitions = list(map(self._partitioner, keys, repeat(self._num_partitions)))
        self._check_partitions(partitions, keys)
        return partitions

    def _partition_of(self, key) -> int:
        if self._num_partitions == 1:
            return 0
        partition = self._partitioner(key, self._num_partitions)
        if self._partitioner is not stable_partition:
            self._check_partitions([partition], [key])
        return partition

    def _check_partitions(self, partitions: list, keys: list) -> None:
        # Only the distinct partition numbers are checked, so this costs a set() per chunk.
        for partition in set(partitions):
            if type(partition) is not int or not 0 <= partition < self._num_partitions:
                key = keys[partitions.index(partition)]
                raise RecordError(
                    f"the partitioner returned {_short_repr(partition)} for key {_short_repr(key)}; "
                    f"it must return an int in range(0, {self._num_partitions})")

    # -- combining and spilling --------------------------------------------------------------------

    def _after_buffering(self, count: int) -> None:
        self._buffered += count
        if self._combiner is None:
            if self._buffered >= self._spill_records:
                self._spill()
            return
        self._added_since_combine += count
        if self._added_since_combine >= self._combine_every or self._buffered >= self._spill_records:
            self._combine()
            if self._buffered >= self._spill_records:
                self._spill()

    def _combine(self) -> None:
        """Run the combiner over every buffered key with more than one value."""
        for groups in self._groups:
            # The keys holding several values, selected in C (compress) rather than by a Python loop.
            crowded = list(compress(groups.keys(), map((1).__lt__, map(len, groups.values()))))
            for group_key in crowded:
                self._combine_group(groups, group_key)
        self._added_since_combine = 0
        self._buffered = sum(sum(map(len, groups.values())) for groups in self._groups)

    def _combine_group(self, groups: dict, group_key) -> None:
        values = groups[group_key]
        combined = groups[group_key] = []
        key = _key_of_group(group_key)
        output = self._combiner(key, iter(values))
        if output is None:
            raise RecordError(
                f"the combiner returned None for key {_short_repr(key)}; it must return or yield "
                f"(key, value) pairs")
        for pair in output:
            if type(pair) is not tuple or len(pair) != 2:
                if not _is_pair(pair):
                    raise _not_a_pair(pair, "combiner")
            out_key, out_value = pair
            if out_key is key:
                combined.append(out_value)
            else:
                self._group_one(out_key, out_value)  # any key: routed like map output
        if not combined and groups.get(group_key) is combined:
            del groups[group_key]

    def _spill(self) -> None:
        for partition in range(self._num_partitions):
            if self._combiner is None:
                self._spill_pairs(partition)
            else:
                self._spill_groups(partition)
        self._buffered = 0

    def _spill_pairs(self, partition: int) -> None:
        pairs = self._pairs[partition]
        if not pairs:
            return
        self._pairs[partition] = []
        _sort_pairs_by_key(pairs)
        self._write_run(partition, list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs)))

    def _spill_groups(self, partition: int) -> None:
        groups = self._groups[partition]
        if not groups:
            return
        self._groups[partition] = defaultdict(list)
        if set(map(type, groups)) == {str}:
            keyed_lists = list(groups.items())
        else:
            keyed_lists = list(zip(map(_key_of_group, groups), groups.values()))
        _sort_pairs_by_key(keyed_lists)
        value_lists = list(map(itemgetter(1), keyed_lists))
        keys = list(chain.from_iterable(map(repeat, map(itemgetter(0), keyed_lists), map(len, value_lists))))
        self._write_run(partition, keys, list(chain.from_iterable(value_lists)))

    def _write_run(self, partition: int, keys: list, values: list) -> None:
        runs = self._files.setdefault(partition, [])
        path = os.path.join(self._directory, f"part-{partition:05d}-run-{len(runs):03d}.arrow")
        self._bytes_written += _write_table_atomically(_run_table(keys, values), path)
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


def _open_run(path: str):
    """(memory map, RecordBatchFileReader) of a run file, or ShuffleReadError."""
    source = None
    try:
        source = pa.memory_map(path, "r")
        reader = pa.ipc.open_file(source)
        if reader.schema.names != ["key", "value"] or reader.schema.metadata is None \
                or _KEY_TYPES_METADATA not in reader.schema.metadata:
            raise ValueError("not a shuffle run file (no key and value columns with key type metadata)")
        return source, reader
    except Exception as cause:
        if source is not None:
            source.close()
        raise ShuffleReadError(path, cause) from cause


def _key_type_names(path: str, reader) -> set:
    try:
        return set(json.loads(reader.schema.metadata[_KEY_TYPES_METADATA]))
    except Exception as cause:
        raise ShuffleReadError(path, cause) from cause


def _unpickled_column(array: pa.Array) -> list:
    return list(map(pickle.loads, array.to_pylist()))


def _column_decoder(field: pa.Field) -> Callable:
    if field.metadata and field.metadata.get(b"encoding") == b"pickle":
        return _unpickled_column
    return pa.Array.to_pylist


def _read_batches(path: str, source, reader) -> Iterator[tuple]:
    """(keys, values) lists of one run, one record batch at a time."""
    decode_key = _column_decoder(reader.schema.field(0))
    decode_value = _column_decoder(reader.schema.field(1))
    with source:
        for index in range(reader.num_record_batches):
            try:
                batch = reader.get_batch(index)
                batch.validate(full=True)  # corrupt offsets must fail here, not crash the conversion
                keys, values = decode_key(batch.column(0)), decode_value(batch.column(1))
            except Exception as cause:
                raise ShuffleReadError(path, cause) from cause
            yield keys, values


class _RunCursor:
    """The merge's position in one run: its current batch and the index of the next record to take."""

    __slots__ = ("_batches", "_order", "keys", "values", "order_keys", "position")

    def __init__(self, batches: Iterator[tuple], order: Optional[Callable]):
        self._batches = batches
        self._order = order

    def next_batch(self) -> bool:
        """Move to the next non-empty batch; False when the run is exhausted."""
        for keys, values in self._batches:
            if keys:
                self.keys, self.values, self.position = keys, values, 0
                # bisect needs the batch in the merge's order: the keys themselves, or their sort keys.
                self.order_keys = keys if self._order is None else list(map(self._order, keys))
                return True
        return False

    @property
    def last(self):
        return self.order_keys[-1]

    def has_more(self) -> bool:
        return self.position < len(self.keys) or self.next_batch()

    def take_until(self, end: int) -> Iterator[tuple]:
        start, self.position = self.position, end
        return zip(self.keys[start:end], self.values[start:end])

    def take_rest(self) -> Iterator[tuple]:
        """Everything left in this run, as iterators of (key, value)."""
        yield self.take_until(len(self.keys))
        for keys, values in self._batches:
            yield zip(keys, values)


def _next_chunk(cursors: list) -> list:
    """Every record, from all runs' current batches, up to the smallest of their last keys: nothing
    later in any run can sort before those, so they can be emitted once sorted among themselves."""
    bounding = min(cursors, key=attrgetter("last"))
    bound = bounding.last
    chunk = []
    for cursor in cursors:
        # The bounding run is taken whole so that the merge progresses even if keys compare oddly (NaN).
        end = len(cursor.keys) if cursor is bounding else bisect_right(cursor.order_keys, bound, cursor.position)
        chunk.extend(cursor.take_until(end))
    return chunk


def _merged_chunks(cursors: list, order: Optional[Callable], type_names: set) -> Iterator[Iterable]:
    """The k-way merge of sorted runs, as a sequence of sorted chunks. Each chunk is sorted by list.sort,
    whose merging of the already-sorted pieces runs in C, rather than record by record in heapq.merge;
    memory stays at about one batch per run."""
    cursors = [cursor for cursor in cursors if cursor.next_batch()]
    pair_key = _pair_sort_key(order)
    while len(cursors) > 1:
        try:
            chunk = _next_chunk(cursors)
            chunk.sort(key=pair_key)
        except TypeError as cause:
            raise _unorderable(type_names, cause) from cause
        yield chunk
        cursors = [cursor for cursor in cursors if cursor.has_more()]
    if cursors:
        yield from cursors[0].take_rest()


def _type_and_key(pair: tuple) -> tuple:
    return (type(pair[0]), pair[0])


def iter_partition_groups(paths: list) -> Iterator[tuple]:
    """Merge the sorted runs of one partition and yield (key, values) in increasing key order, where
    values is a lazy iterator (consume or skip it before asking for the next group). A missing or
    corrupt run raises ShuffleReadError naming it."""
    opened = [(path, *_open_run(path)) for path in paths]
    type_names = set()
    for path, _, reader in opened:
        type_names |= _key_type_names(path, reader)
    order = _sort_key_for_names(type_names)
    cursors = [_RunCursor(_read_batches(path, source, reader), order) for path, source, reader in opened]
    records = chain.from_iterable(_merged_chunks(cursors, order, type_names))
    if order is None:
        for key, group in groupby(records, itemgetter(0)):
            yield key, map(itemgetter(1), group)
    else:
        # Several key types: equal keys of different types (1 and True) must not share a group.
        for (_, key), group in groupby(records, _type_and_key):
            yield key, map(itemgetter(1), group)


def count_records(paths: Iterable[str]) -> int:
    """The number of records in these run files, from their batch headers (no data is decoded)."""
    total = 0
    for path in paths:
        source, reader = _open_run(path)
        with source:
            try:
                total += sum(reader.get_batch(index).num_rows for index in range(reader.num_record_batches))
            except Exception as cause:
                raise ShuffleReadError(path, cause) from cause
    return total
