"""The vectorised job API: whole Arrow batches in, Arrow tables out, Arrow-native aggregation.

A job may define `map_batches(batch) -> pyarrow.Table` instead of `mapper`: `batch` is a
RecordBatch with columns `key` (the input file's path) and `value` (one line, or one file's text,
per row); the result has a `key` column and, unless the job counts rows, a `value` column. With
`REDUCE = "count" | "sum" | "min" | "max"` the values of each key are aggregated by Arrow, on the
map side (as a combiner would) and again on the reduce side, so no Python code runs per record;
`REDUCE = "identity"` writes every row in key order (a sort) without a Python reducer.
Without REDUCE, the rows travel through the ordinary shuffle to a Python `reducer`, or straight
to the output for a map-only job.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .defaults import SPILL_RECORDS
from .errors import RecordError

try:  # the optional C loops (setup.py builds mapreduce/_speedups.c where a compiler exists)
    from mapreduce._speedups import str_counter, str_counter_add, str_counter_take
except ImportError:
    str_counter = None

IDENTITY = "identity"  # no aggregation: every row, sorted by key (Hadoop's IdentityReducer)
AGGREGATIONS = ("count", "sum", "min", "max", IDENTITY)
# How partial results of each aggregation are combined: partial counts are summed.
_COMBINE = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}
PARTIAL_ROWS = (
    1_000_000  # rows gathered before a map-side partial aggregation (about 16 MB of words)
)
COUNT_SLICE_ROWS = 1 << 18  # rows counted per hash table (see count_slices)
# Distinct keys a KeyCounter holds before BatchAggregator takes them out as a partial result
# (its table then takes about 32 MB, plus the keys' bytes).
COUNTER_KEYS = 400_000
_COUNTED_TYPES = (pa.large_string(), pa.large_binary())  # what KeyCounter counts

_PYTHON_TYPE_NAMES = [
    (pa.types.is_string, "str", pa.large_string()),
    (pa.types.is_large_string, "str", pa.large_string()),
    (pa.types.is_boolean, "bool", pa.bool_()),
    (pa.types.is_integer, "int", pa.int64()),
    (pa.types.is_floating, "float", pa.float64()),
    (pa.types.is_binary, "bytes", pa.large_binary()),
    (pa.types.is_large_binary, "bytes", pa.large_binary()),
]


def input_batch(path: str, values) -> pa.RecordBatch:
    """The batch map_batches receives: one row per line (or file), with the file's path as key.
    `values` is an Arrow large_string array or a list of str."""
    value = values if isinstance(values, pa.Array) else pa.array(values, pa.large_string())
    key = pa.DictionaryArray.from_arrays(
        pa.nulls(len(values), pa.int32()).fill_null(0), pa.array([path], pa.large_string())
    )
    return pa.record_batch([key.cast(pa.large_string()), value], names=["key", "value"])


def checked_output(result, aggregation: str | None) -> pa.Table:
    """map_batches' result as a Table with native key (and value) columns, or RecordError."""
    if isinstance(result, pa.RecordBatch):
        result = pa.Table.from_batches([result])
    if not isinstance(result, pa.Table):
        raise RecordError(
            f"map_batches returned {type(result).__name__}; it must return a "
            f"pyarrow.Table (or RecordBatch) with a 'key' column"
            f"{'' if aggregation == 'count' else ' and a value column'}"
        )
    names = set(result.column_names)
    needed = {"key"} if aggregation == "count" else {"key", "value"}
    if not needed <= names:
        raise RecordError(
            f"map_batches returned columns {sorted(names)}; it must return "
            f"{' and '.join(sorted(needed))}"
        )
    key = _native(result.column("key"), "key")
    if aggregation == "count":
        return pa.table({"key": key})
    value = result.column("value")
    if aggregation not in (None, IDENTITY):
        value = _native(value, "value")
    return pa.table({"key": key, "value": value})


def _native(column, role: str):
    for test, _, arrow_type in _PYTHON_TYPE_NAMES:
        if test(column.type):
            return column.cast(arrow_type)
    raise RecordError(
        f"map_batches returned a {role} column of type {column.type}; keys and "
        f"aggregated values must be strings, integers, floats, booleans or binary"
    )


def python_type_name(arrow_type: pa.DataType) -> str:
    for test, name, _ in _PYTHON_TYPE_NAMES:
        if test(arrow_type):
            return name
    raise RecordError(f"unsupported key type {arrow_type}")


def aggregate(table: pa.Table, aggregation: str, partial: bool = False) -> pa.Table:
    """Aggregate values per key. `partial` means the input rows are raw map output; otherwise they
    are already partial results (a count's partial results are then summed)."""
    keys = _one_chunk(table.column("key"))
    if aggregation == "count" and partial:
        counts = pc.value_counts(keys)
        return pa.table({"key": counts.field("values"), "value": counts.field("counts")})
    how = aggregation if partial else _COMBINE[aggregation]
    return _aggregate_by_key(keys, _one_chunk(table.column("value")), how)


def _one_chunk(column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def count_slices(keys) -> list:
    """Rows per key, as one table per COUNT_SLICE_ROWS slice of `keys`: counted by Arrow's hash
    kernel, whose hash table then stays in the CPU's cache (about twice as fast per row as one
    table over a million rows of a large vocabulary). A key is in several of the tables; the
    caller sums them (BatchAggregator, when it folds its partial results)."""
    chunks = keys.chunks if isinstance(keys, pa.ChunkedArray) else [keys]
    tables = []
    for chunk in chunks:
        for start in range(0, len(chunk), COUNT_SLICE_ROWS):
            counts = pc.value_counts(chunk.slice(start, COUNT_SLICE_ROWS))
            tables.append(
                pa.table({"key": counts.field("values"), "value": counts.field("counts")})
            )
    return tables


class KeyCounter:
    """Rows per key of large_string or large_binary key columns, counted in one C hash table
    (mapreduce._speedups.str_counter) as they come, rather than per slice by Arrow and then
    summed: on a long tail of distinct keys, summing re-hashed every key at each fold. Keys are
    equal when their bytes are (as Arrow's hash kernels compare them); a null key is counted
    apart. `counts()` gives (and forgets) what was counted, keys in the order first seen."""

    def __init__(self, key_type: pa.DataType):
        assert str_counter is not None and key_type in _COUNTED_TYPES, "KeyCounter cannot count"
        self.type = key_type
        self.distinct = 0  # distinct keys held (the null key too)
        self._table = str_counter()
        self._keys = 0  # distinct keys in the C table
        self._nulls = 0  # rows (or the sum of the values) of the null key
        self._counted_nulls = False

    @staticmethod
    def counts_type(key_type: pa.DataType) -> bool:
        """Whether keys of this type can be counted by a KeyCounter here."""
        return str_counter is not None and key_type in _COUNTED_TYPES

    def add(self, keys, values=None) -> int:
        """Count every row of `keys` as 1, or as its integer in `values` (an array of the same
        length); the number of distinct keys now held."""
        if values is None:
            for chunk in keys.chunks if isinstance(keys, pa.ChunkedArray) else [keys]:
                self._add(chunk, None)
        else:
            values = _one_chunk(values)
            if values.type != pa.int64():
                values = values.cast(pa.int64())
            self._add(_one_chunk(keys), values.fill_null(0) if values.null_count else values)
        self.distinct = self._keys + self._counted_nulls
        return self.distinct

    def _add(self, keys: pa.Array, values: pa.Array | None) -> None:
        if keys.null_count:
            valid = keys.is_valid()
            self._nulls += (
                pc.sum(values.filter(pc.invert(valid))).as_py() or 0
                if values is not None
                else keys.null_count
            )
            self._counted_nulls = True
            keys = keys.filter(valid)
            values = values.filter(valid) if values is not None else None
        if len(keys):
            _, offsets, data = keys.buffers()
            self._keys = str_counter_add(
                self._table,
                offsets,
                data if data is not None else b"",
                keys.offset,
                len(keys),
                *((values.buffers()[1], values.offset) if values is not None else ()),
            )

    def counts(self) -> pa.Table:
        """The counted keys (in the order first seen, the null key last) and their counts; the
        counter is empty afterwards."""
        offsets, data, counts, keys = str_counter_take(self._table)
        self._keys = self.distinct = 0
        key_column = pa.Array.from_buffers(
            self.type, keys, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        count_column = pa.Array.from_buffers(pa.int64(), keys, [None, pa.py_buffer(counts)])
        if self._counted_nulls:
            key_column = pa.concat_arrays([key_column, pa.nulls(1, self.type)])
            count_column = pa.concat_arrays([count_column, pa.array([self._nulls], pa.int64())])
            self._nulls, self._counted_nulls = 0, False
        return pa.table({"key": key_column, "value": count_column})


def _aggregate_by_key(keys: pa.Array, values: pa.Array, how: str) -> pa.Table:
    """`how` ("sum", "min", "max") of the values of each key. The keys are hashed once, by
    dictionary_encode, and the values grouped by the resulting integer codes: Acero groups
    integers several times faster than it groups strings. One thread, as the workers already
    keep the cores busy."""
    encoded = pc.dictionary_encode(keys)
    grouped = (
        pa.table({"code": encoded.indices, "value": values})
        .group_by("code", use_threads=False)
        .aggregate([("value", how)])
    )
    return pa.table(
        {
            "key": encoded.dictionary.take(grouped.column("code")),
            "value": grouped.column(f"value_{how}"),
        }
    )


class BatchAggregator:
    """Map-side aggregation with bounded memory: gather rows, aggregate every PARTIAL_ROWS (a
    count counts each table as it comes: string keys into one KeyCounter, taken out as a partial
    result whenever it holds COUNTER_KEYS keys; other keys a cache-sized slice at a time by
    Arrow), and fold the partial
    results together whenever they hold PARTIAL_ROWS more rows than the last fold gave (a long
    tail of distinct keys), so about 2 x PARTIAL_ROWS rows, plus the distinct keys, are held.
    (Folding every 2 x PARTIAL_ROWS cost no less CPU we could measure, and a worker peaked at
    289 MB rather than 247 MB on the 256 MB word count.)"""

    def __init__(self, aggregation: str):
        self.aggregation = aggregation
        self.raw: list = []
        self.raw_rows = 0
        self.partials: list = []
        self.partial_rows = 0
        self.folded_rows = 0  # rows of the last fold, which partials[0] then holds
        self.rows_in = 0
        self.counter: KeyCounter | None = None  # a count's keys, when they are strings or bytes

    def add(self, table: pa.Table) -> None:
        self.rows_in += table.num_rows
        if self.aggregation == "count":
            keys = table.column("key")
            if self.counter is None and KeyCounter.counts_type(keys.type):
                self.counter = KeyCounter(keys.type)
            if self.counter is not None and keys.type == self.counter.type:
                if self.counter.add(keys) >= COUNTER_KEYS:
                    self._add_partials([self.counter.counts()])
                return
            self._add_partials(count_slices(keys))
            return
        self.raw.append(table)
        self.raw_rows += table.num_rows
        if self.raw_rows >= PARTIAL_ROWS:
            self._fold_raw()

    def _fold_raw(self) -> None:
        if self.raw:
            raw, self.raw, self.raw_rows = self.raw, [], 0
            partial = aggregate(pa.concat_tables(raw), self.aggregation, partial=True)
            del raw
            self._add_partials([partial])
            _release_freed_memory()

    def _add_partials(self, partials: list) -> None:
        self.partials.extend(partials)
        self.partial_rows += sum(partial.num_rows for partial in partials)
        if self.partial_rows >= self.folded_rows + PARTIAL_ROWS and len(self.partials) > 1:
            self._fold_partials()

    def _fold_partials(self) -> None:
        folded = aggregate(pa.concat_tables(self.partials), self.aggregation)
        self.partials = [folded]
        self.partial_rows = self.folded_rows = folded.num_rows
        _release_freed_memory()

    def result(self) -> pa.Table | None:
        self._fold_raw()
        if self.counter is not None and self.counter.distinct:
            self._add_partials([self.counter.counts()])
        if not self.partials:
            return None
        if len(self.partials) > 1:
            self._fold_partials()
        return self.partials[0]


def _release_freed_memory() -> None:
    """Hand memory Arrow's pool has freed back to the system (mimalloc and jemalloc keep it for
    reuse otherwise, which shows as resident memory long after the tables are gone)."""
    pa.default_memory_pool().release_unused()


def partition_ids(keys, num_partitions: int, partitioner=None, partition_batches=None) -> pa.Array:
    """The partition of every key: the job's vectorised `partition_batches(keys, n)` if it has one,
    else a RangePartitioner's by Arrow's search_sorted, else its `partitioner` or the stable
    partition per key in Python (of string keys by C), as the shuffle's writer
    partitions, so vectorised and per-record jobs agree on where a key goes."""
    from .partitioners import RangePartitioner
    from .shuffle import partitions_of, stable_partition, stable_partition_array

    if partition_batches is not None:
        return _checked_ids(partition_batches(keys, num_partitions), len(keys), num_partitions)
    if isinstance(partitioner, RangePartitioner):
        return partitioner.partition_array(keys, num_partitions)
    if partitioner is None or partitioner is stable_partition:
        ids = stable_partition_array(keys, num_partitions)  # string keys, by C
        if ids is not None:
            return ids
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    distinct = pc.unique(keys)
    if len(distinct) * 2 > len(keys):  # mostly distinct keys: one Python key per row anyway
        return pa.array(partitions_of(keys.to_pylist(), num_partitions, partitioner), pa.int32())
    # Repeated keys (a skewed key above all): Python sees each distinct key once, not every row.
    of_distinct = pa.array(
        partitions_of(distinct.to_pylist(), num_partitions, partitioner), pa.int32()
    )
    return of_distinct.take(pc.index_in(keys, value_set=distinct))


def _checked_ids(ids, rows: int, num_partitions: int) -> pa.Array:
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if (
        not isinstance(ids, pa.Array)
        or not pa.types.is_integer(ids.type)
        or len(ids) != rows
        or ids.null_count
    ):
        raise RecordError(
            f"partition_batches must return an integer Arrow array with one partition "
            f"per key ({rows}), without nulls"
        )
    low, high = pc.min_max(ids).values() if rows else (pa.scalar(0), pa.scalar(0))
    if rows and not (0 <= low.as_py() and high.as_py() < num_partitions):
        raise RecordError(
            f"partition_batches returned partitions from {low} to {high}; they must "
            f"be in range(0, {num_partitions})"
        )
    return ids.cast(pa.int32())


class RunSpiller:
    """A vectorised map task's shuffle output: its tables gathered and written, partitioned and
    sorted by key (and value, with `sort_values`; not sorted without `sort_keys`), as shuffle run
    files every `spill_records` rows, so its memory is bounded by that rather than by the split
    (the reduce merges the runs, or hashes them together).
    `close()` returns ({partition: [path]}, bytes written, the runs' stats, rows written)."""

    def __init__(
        self,
        directory: str,
        num_partitions: int,
        partitioner=None,
        partition_batches=None,
        sort_values: bool = False,
        spill_records: int = SPILL_RECORDS,
        compression: str | None = None,
        sort_keys: bool = True,
    ):
        from .shuffle import RunWriter

        self._spill_records = max(1, spill_records)
        self.runs = RunWriter(directory, compression=compression)
        self._partitioning = (num_partitions, partitioner, partition_batches)
        # Without sort_keys (an aggregating job's partial results, which its reduce hashes
        # together rather than merges: reduce_runs) runs are only grouped by partition.
        self._order = (
            [("key", "ascending")] + ([("value", "ascending")] if sort_values else [])
            if sort_keys
            else None
        )
        self._pending: list = []
        self._pending_rows = 0
        self._empty: pa.Table | None = None  # the first table's schema, with no rows
        self.rows_written = 0

    def add(self, table: pa.Table) -> None:
        if self._empty is None:
            self._empty = table.slice(0, 0)
        elif not table.schema.equals(self._empty.schema):
            pa.concat_tables([self._empty, table])  # raises as one concatenation of all would
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self._spill_records:
            self._spill()

    def _spill(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        num_partitions, partitioner, partition_batches = self._partitioning
        key_type_name = python_type_name(table.schema.field("key").type)
        for start in range(0, table.num_rows, self._spill_records):
            chunk = table.slice(start, self._spill_records)
            ids = partition_ids(chunk.column("key"), num_partitions, partitioner, partition_batches)
            # One stable sort of the whole chunk; each partition's rows are then its indices in
            # that order (a slice when the partitions follow the key order, as a range
            # partitioner's do), taken one partition at a time.
            if self._order is None:
                order = pc.sort_indices(ids)  # integers: stable, and much cheaper than keys
            elif len(self._order) == 1:  # by key alone: strings by a radix sort (key_order)
                from .shuffle import key_order

                order = key_order(chunk.column("key"))
            else:
                order = pc.sort_indices(chunk, sort_keys=self._order)
            sorted_ids = ids.take(order)
            for partition, indices in _indices_by_partition(order, sorted_ids, num_partitions):
                self.runs.write_table(partition, chunk.take(indices), key_type_name)
        self.rows_written += table.num_rows

    def close(self) -> tuple[dict, int, dict, int]:
        self._spill()
        runs = self.runs
        return runs.files, runs.bytes_written, runs.stats(), self.rows_written


def _indices_by_partition(order: pa.Array, sorted_ids: pa.Array, num_partitions: int):
    """(partition, its row indices in sorted order) for every partition that has rows: slices
    of `order` when its partition ids never decrease, else a filter of it per partition."""
    rows = len(order)
    if rows and pc.all(pc.less_equal(sorted_ids.slice(0, rows - 1), sorted_ids.slice(1))).as_py():
        bounds = pc.search_sorted(
            sorted_ids, pa.array(range(num_partitions + 1), sorted_ids.type), side="left"
        ).to_pylist()
        for partition in range(num_partitions):
            start, end = bounds[partition], bounds[partition + 1]
            if end > start:
                yield partition, order.slice(start, end - start)
        return
    for partition in range(num_partitions):
        indices = order.filter(pc.equal(sorted_ids, partition))
        if len(indices):
            yield partition, indices


def reduce_runs(paths: list, aggregation: str) -> pa.Table | None:
    """The reduce side of an aggregating job: combine every map task's partial results, sorted.
    (Aggregated results are one row per key; identity streams instead: see reduce_slices.)
    Partial counts of string keys are summed in a KeyCounter, a run at a time."""
    from .shuffle import key_order, read_run_table

    tables = [read_run_table(path) for path in paths]
    if not any(table.num_rows for table in tables):
        return None
    key_types = {table.schema.field("key").type for table in tables}
    if aggregation == "count" and len(key_types) == 1 and KeyCounter.counts_type(*key_types):
        counter = KeyCounter(*key_types)
        for table in tables:
            counter.add(table.column("key"), table.column("value"))
        result = counter.counts()
    else:
        result = aggregate(pa.concat_tables(tables), aggregation)
    return result.take(key_order(result.column("key")))


def reduce_slices(paths: list, aggregation: str):
    """(keys, values) Arrow slices of the reduce output in key order. Identity streams a merge of
    the sorted runs, so memory stays bounded however large the partition."""
    from .shuffle import iter_partition_slices

    if aggregation == IDENTITY:
        yield from iter_partition_slices(paths)
        return
    table = reduce_runs(paths, aggregation)
    if table is not None:
        yield table.column("key"), table.column("value")


def aggregates_on_map_side(aggregation: str | None) -> bool:
    return aggregation is not None and aggregation != IDENTITY
