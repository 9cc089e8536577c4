"""The run file: how a sorted run of (key, value) pairs is stored, written and read back.

Run file format (one Arrow IPC file; a map task's runs are named `part-{partition:05d}-run-{n:03d}.arrow`):
  * two columns, `key` and `value`, in record batches of ARROW_BATCH_ROWS rows;
  * a column whose elements all have exactly one native type is stored natively (str -> large_string,
    int -> int64, float -> float64, bytes -> large_binary, bool -> bool_); any other column holds
    `pickle.dumps(x, protocol=5)` per element in large_binary, with field metadata {b"encoding": b"pickle"};
  * a key column of tuples (of str, int, float, bytes, bool, None and such tuples) that Python can
    always compare holds their order-preserving encoding (keys.py) in large_binary, with field
    metadata {b"encoding": b"tuple-order", b"signature": the classes of their items}: Arrow
    sorts and merges it in Python's order;
  * buffers may be compressed (LZ4 frame or ZSTD: RunWriter's `compression`), which Arrow's
    reader undoes by itself;
  * the schema metadata b"key_types" lists the names of the key types (JSON), so a reader knows which
    ordering the runs of a partition share without reading their data.

`RunWriter` writes a map task's runs (sorted Python pairs, or Arrow tables the vectorised API
sorted) and keeps account of them; `write_run_file` writes one file of pairs as they come (the
Arrow files between the steps of a multi-step job). Every write goes under a temporary name and is
renamed (or, at a URI, is one object closed whole), so a crash never leaves a partial run.
`RunReader` opens one run for reading; a missing, unreadable or corrupt run raises ShuffleReadError.
"""

from __future__ import annotations

import json
import pickle
from functools import partial
from itertools import chain, islice
from operator import itemgetter
from typing import Callable, Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc

from mapreduce import storage
from mapreduce.defaults import ARROW_BATCH_ROWS
from mapreduce.errors import RecordError
from mapreduce.pairs import as_pairs, short_repr

from .keys import NotEncodable, decode_key_array, encoded_with_signature
from .ordering import sort_pairs_by_key


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
        cause = (
            self.cause
            if isinstance(self.cause, str)
            else f"{type(self.cause).__name__}: {self.cause}"
        )
        return (ShuffleReadError, (self.path, cause))


_KEY_TYPES_METADATA = b"key_types"
_PICKLE_METADATA = {b"encoding": b"pickle"}
_TUPLE_ORDER = b"tuple-order"
_NATIVE_ARROW_TYPES = {
    str: pa.large_string(),
    int: pa.int64(),
    float: pa.float64(),
    bytes: pa.large_binary(),
    bool: pa.bool_(),
}
_NATIVE_TYPES = frozenset(_NATIVE_ARROW_TYPES)  # always stored natively or pickled fine
_dumps = partial(pickle.dumps, protocol=5)


# ---------------------------------------------------------------------------------------------------
# Encoding


def check_picklable(item, role: str) -> None:
    """The RecordError every path gives for a key or value (`role`) that cannot be pickled (a run
    pickles what has no native Arrow type)."""
    try:
        _dumps(item)
    except Exception as cause:
        raise RecordError(
            f"a {role} of type {type(item).__name__} cannot be pickled: {cause}"
        ) from cause


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


def _pickled(column: list, role: str) -> list:
    try:
        return list(map(_dumps, column))
    except Exception as cause:
        for item in column:
            check_picklable(item, role)  # raises for the first that cannot be pickled
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


def _tuple_key_column(keys: list):
    """(Arrow array, field metadata) of tuple keys as order-preserving bytes, or None when they
    hold other types or Python could not always compare them (then they are pickled, and sorted
    in Python, which names the keys it cannot compare)."""
    try:
        encoded_signed = encoded_with_signature(keys)
    except NotEncodable:
        return None
    if encoded_signed is None:
        return None
    encoded, signature = encoded_signed
    metadata = {b"encoding": _TUPLE_ORDER, b"signature": signature.encode("utf-8")}
    return pa.array(encoded, type=pa.large_binary()), metadata


def encoded_tuple_table(encoded: pa.Array, values: list, signature: str) -> pa.Table:
    """A run's table (unsorted) of tuple keys already encoded (keys.encode_keys, as a large_binary
    array; one signature: see keys.uniform_signature) and their values; RunWriter.write_table
    writes it once sorted."""
    key_metadata = {b"encoding": _TUPLE_ORDER, b"signature": signature.encode("utf-8")}
    value_array, value_metadata, _ = _encoded_column(values, "value")
    schema = pa.schema(
        [
            pa.field("key", pa.large_binary(), metadata=key_metadata),
            pa.field("value", value_array.type, metadata=value_metadata),
        ]
    )
    return pa.Table.from_arrays([encoded, value_array], schema=schema)


def _run_table(keys: list, values: list, tuple_keys=None) -> pa.Table:
    """The run's table; `tuple_keys`, when given, is _tuple_key_column(keys)."""
    if tuple_keys is None and keys and type(keys[0]) is tuple and set(map(type, keys)) == {tuple}:
        tuple_keys = _tuple_key_column(keys)
    if tuple_keys is not None:
        (key_array, key_metadata), key_types = tuple_keys, {tuple}
    else:
        key_array, key_metadata, key_types = _encoded_column(keys, "key")
    value_array, value_metadata, _ = _encoded_column(values, "value")
    key_type_names = json.dumps(sorted({key_type.__name__ for key_type in key_types}))
    schema = pa.schema(
        [
            pa.field("key", key_array.type, metadata=key_metadata),
            pa.field("value", value_array.type, metadata=value_metadata),
        ],
        metadata={_KEY_TYPES_METADATA: key_type_names.encode("utf-8")},
    )
    return pa.Table.from_arrays([key_array, value_array], schema=schema)


# Keys Arrow sorts in Python's order once stored natively: UTF-8 byte order is code point order,
# and int64, binary and bool compare as in Python. (Floats are left to Python: NaN has no place
# in its order.)
_ARROW_SORTED_KEY_TYPES = {str, int, bytes, bool}


def _sorted_run_table(keys: list, values: list, sort_values: bool = False) -> pa.Table:
    """A run's table sorted by key, stably (a key's values keep their order), or with
    `sort_values` by key then value: by Arrow when all keys have one of the types above and were
    stored natively (and so were the values, when they are sorted too), or are tuples stored as
    order-preserving bytes, else by sorting the pairs in Python before they are encoded (other
    tuples, mixed types, floats, ints beyond int64)."""
    key_types = set(map(type, keys))
    if key_types == {tuple} and not sort_values:
        tuple_keys = _tuple_key_column(keys)
        if tuple_keys is not None:  # sorted by Arrow as bytes, in Python's order
            table = _run_table(keys, values, tuple_keys)
            return table.take(pc.sort_indices(table.column("key")))
    if len(key_types) == 1 and key_types <= _ARROW_SORTED_KEY_TYPES:
        table = _run_table(keys, values)
        if table.schema.field("key").metadata is None:
            if not sort_values:
                return table.take(pc.sort_indices(table.column("key")))
            value_types = set(map(type, values))
            if table.schema.field("value").metadata is None and value_types <= (
                _ARROW_SORTED_KEY_TYPES
            ):
                order = [("key", "ascending"), ("value", "ascending")]
                return table.take(pc.sort_indices(table, sort_keys=order))
    pairs = list(zip(keys, values))
    sort_pairs_by_key(pairs, sort_values)
    return _run_table(list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs)))


# ---------------------------------------------------------------------------------------------------
# Writing


_DECODED_ROWS = 8192  # rows of a run turned into Python objects at a time by RunReader.records
_SAMPLED_KEYS = 1024  # keys sampled (evenly spaced) from each run for the heavy-key report
_HEAVY_KEYS_KEPT = 16  # the heaviest sampled keys a map task keeps (and reports)


class RunWriter:
    """Writes one map task's runs into `directory`, numbering each partition's runs in the order
    written, and keeps account: `files` (partition -> its run paths), `records`, `bytes_written`,
    and per partition its records and bytes; `stats()` reports those with the heaviest keys
    (estimated from a small evenly spaced sample of every run's sorted keys)."""

    def __init__(
        self, directory: str, sort_values: bool = False, compression: Optional[str] = None
    ):
        self.directory = directory
        self.sort_values = sort_values
        self.compression = compression  # the codec of the runs' Arrow buffers, or None
        self.files: dict = {}
        self.records = 0
        self.bytes_written = 0
        self.partition_records: dict = {}
        self.partition_bytes: dict = {}
        self.heavy_keys: dict = {}  # key as shown (short repr) -> estimated records

    def write_pairs(self, partition: int, keys: list, values: list) -> None:
        """Write a run of Python keys and values of any types, sorted by key (stably; with
        sort_values, by key then value)."""
        self._write(partition, _sorted_run_table(keys, values, self.sort_values))

    def write_table(self, partition: int, table: pa.Table, key_type_name: str) -> None:
        """Write a run from an Arrow table of native `key` and `value` columns, already sorted by
        key (an aggregating vectorised job's partial results need not be: its reduce hashes its
        runs together); `key_type_name` names the Python type its keys read back as ("str", ...)."""
        metadata = {_KEY_TYPES_METADATA: json.dumps([key_type_name]).encode()}
        self._write(partition, table.replace_schema_metadata(metadata).combine_chunks())

    def _write(self, partition: int, table: pa.Table) -> None:
        runs = self.files.setdefault(partition, [])
        path = storage.join(self.directory, f"part-{partition:05d}-run-{len(runs):03d}.arrow")
        written = _write_table(table, path, self.compression)
        runs.append(path)
        self.bytes_written += written
        self.records += table.num_rows
        self.partition_bytes[partition] = self.partition_bytes.get(partition, 0) + written
        self.partition_records[partition] = (
            self.partition_records.get(partition, 0) + table.num_rows
        )
        self._sample_keys(table)

    def _sample_keys(self, table: pa.Table) -> None:
        """Add this run's heaviest keys, estimated from evenly spaced keys (a sorted run puts a
        key holding a share s of its rows in about s of the samples), keeping the top few."""
        rows = table.num_rows
        if not rows:
            return
        stride = max(1, rows // _SAMPLED_KEYS)
        keys = table.column("key")
        sample = keys.take(pa.array(range(0, rows, stride), pa.int64())).combine_chunks()
        counts = pc.value_counts(sample)
        decode = _column_decoder(table.schema.field("key"))
        shown = decode(counts.field("values"))
        heavy = self.heavy_keys
        for key, count in zip(shown, counts.field("counts").to_pylist()):
            name = short_repr(key)
            heavy[name] = heavy.get(name, 0) + count * rows // len(sample)
        if len(heavy) > _HEAVY_KEYS_KEPT:
            kept = sorted(heavy.items(), key=itemgetter(1), reverse=True)[:_HEAVY_KEYS_KEPT]
            self.heavy_keys = dict(kept)

    def stats(self) -> dict:
        """What the map result reports for the skew report and the scheduler (plain JSON):
        records and bytes per partition, and the heaviest keys as [shown key, estimated records]."""
        return {
            "records": {str(p): n for p, n in sorted(self.partition_records.items())},
            "bytes": {str(p): n for p, n in sorted(self.partition_bytes.items())},
            "heavy_keys": sorted(map(list, self.heavy_keys.items()), key=itemgetter(1))[::-1],
        }


def write_run_file(path: str, keys: list, values: list) -> int:
    """Write Python keys and values, in the order given, as one run-format file at `path`;
    returns the bytes written."""
    return _write_table(_run_table(keys, values), path)


def _write_table(table: pa.Table, path: str, compression: Optional[str] = None) -> int:
    """Write through storage.atomic_write, so a crash never leaves a partial file under `path`,
    with buffers compressed by `compression` ("lz4", "zstd" or None: readers need no telling);
    returns the bytes written."""
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with storage.atomic_write(path) as sink:
        with pa.ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=ARROW_BATCH_ROWS)
        return sink.tell()


def write_merged_run(path: str, like: "RunReader", type_names: set, slices: Iterable) -> None:
    """Write a merge's (keys, values) Arrow slices, in order, as one run at local `path` with the
    columns of the run `like` (a reduce's intermediate run: private scratch, not a final path)."""
    schema = pa.schema(
        [like.key_field, like.value_field],
        metadata={_KEY_TYPES_METADATA: json.dumps(sorted(type_names)).encode()},
    )
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for keys, values in slices:
            writer.write_batch(pa.record_batch([keys, values], schema=schema))


def write_pickled_run(path: str, type_names: set, pairs: Iterable) -> None:
    """Write Python (key, value) pairs, in order, as one run at local `path` whose keys and values
    are all pickled (a reduce's intermediate run of keys or values Arrow cannot merge)."""
    binary = pa.large_binary()
    schema = pa.schema(
        [
            pa.field("key", binary, metadata=_PICKLE_METADATA),
            pa.field("value", binary, metadata=_PICKLE_METADATA),
        ],
        metadata={_KEY_TYPES_METADATA: json.dumps(sorted(type_names)).encode()},
    )
    pairs = iter(pairs)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        while chunk := list(islice(pairs, ARROW_BATCH_ROWS)):
            keys = pa.array([_dumps(key) for key, _ in chunk], binary)
            values = pa.array([_dumps(value) for _, value in chunk], binary)
            writer.write_batch(pa.record_batch([keys, values], schema=schema))


# ---------------------------------------------------------------------------------------------------
# Reading


def _open_for_reading(path: str):
    """A run file for reading: read a batch at a time into memory that is freed with the batch
    (locally by Arrow's own file reader; ranged reads from a URI). Not memory-mapped: a merge
    touches every page of every run it reads, and mapped pages stay in the process's resident
    set until the file is closed, so the memory of a reduce grew with its whole input."""
    if storage.is_uri(path):
        return storage.open_input_file(path)
    return pa.OSFile(path, "rb")


def read_run_table(path: str) -> pa.Table:
    """A whole run as one Arrow table, without its schema metadata (for Arrow-side aggregation)."""
    try:
        with _open_for_reading(path) as source:
            return pa.ipc.open_file(source).read_all().replace_schema_metadata(None)
    except Exception as cause:
        raise ShuffleReadError(path, cause) from cause


def _unpickled(array: pa.Array) -> list:
    return list(map(pickle.loads, array.to_pylist()))


def _tuple_keys(array: pa.Array) -> list:
    return decode_key_array(array)


def _column_decoder(field: pa.Field) -> Callable:
    encoding = field.metadata.get(b"encoding") if field.metadata else None
    if encoding == b"pickle":
        return _unpickled
    if encoding == _TUPLE_ORDER:
        return _tuple_keys
    return pa.Array.to_pylist


class RunReader:
    """One run file opened for reading: its schema is read now, its batches on demand.

    `key_type_names` (the names of its keys' types), `key_field` and `value_field` (the Arrow
    fields), `keys_pickled`, `keys_native` (stored as the Arrow values they are, not encoded),
    `decode_key` and `decode_value` (Arrow column -> Python keys or values) describe it;
    `batches()` gives its record batches and `records()` its pairs as Python objects."""

    def __init__(self, path: str):
        self.path = path
        try:
            self._source = _open_for_reading(path)
        except Exception as cause:
            raise ShuffleReadError(path, cause) from cause
        try:
            self._reader = pa.ipc.open_file(self._source)
            schema = self._reader.schema
            if schema.names != ["key", "value"] or _KEY_TYPES_METADATA not in (
                schema.metadata or {}
            ):
                raise ValueError(
                    "not a shuffle run file (no key and value columns with key type metadata)"
                )
            self.key_type_names = set(json.loads(schema.metadata[_KEY_TYPES_METADATA]))
        except Exception as cause:
            self._source.close()
            raise ShuffleReadError(path, cause) from cause
        self.key_field, self.value_field = schema.field(0), schema.field(1)
        self.decode_key = _column_decoder(self.key_field)
        self.keys_pickled = self.decode_key is _unpickled
        self.keys_native = self.decode_key is pa.Array.to_pylist
        self.decode_value = _column_decoder(self.value_field)

    def close(self) -> None:
        self._source.close()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The run's record batches, checked; the file is closed after the last one."""
        with self._source:
            for index in range(self._reader.num_record_batches):
                try:
                    batch = self._reader.get_batch(index)
                    # Corrupt offsets must fail here, not crash a conversion.
                    batch.validate(full=True)
                except Exception as cause:
                    raise ShuffleReadError(self.path, cause) from cause
                yield batch

    def decoded(self, batch: pa.RecordBatch) -> Iterator[tuple]:
        """The (key, value) pairs of one of this run's batches as Python objects."""
        try:
            return zip(self.decode_key(batch.column(0)), self.decode_value(batch.column(1)))
        except Exception as cause:
            raise ShuffleReadError(self.path, cause) from cause

    def records(self) -> Iterator[tuple]:
        """All (key, value) pairs, decoding a slice of a batch at a time (a merge of many runs
        holds one decoded slice of each, so slices keep its Python objects few)."""
        return chain.from_iterable(map(self.decoded, self._slices()))

    def _slices(self) -> Iterator[pa.RecordBatch]:
        for batch in self.batches():
            for start in range(0, batch.num_rows, _DECODED_ROWS):
                yield batch.slice(start, _DECODED_ROWS)

    def count_records(self) -> int:
        """The number of records, from the batch headers (no data is decoded)."""
        with self._source:
            try:
                return sum(
                    self._reader.get_batch(index).num_rows
                    for index in range(self._reader.num_record_batches)
                )
            except Exception as cause:
                raise ShuffleReadError(self.path, cause) from cause
