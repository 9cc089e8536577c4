"""How records are written to part files, in one of three formats (`--output-format`):

- text (default, `part-NNNNN`): `key<TAB>value` lines of UTF-8. A str is written as it is, anything
  else as JSON text (tuples as arrays); a str containing a tab or a line break is written as JSON
  too, so every line splits back unambiguously at its first tab.
- jsonl (`part-NNNNN.jsonl`): one `{"key": ..., "value": ...}` object per line.
- parquet (`part-NNNNN.parquet`): columns `key` and `value` that keep their types (str, int,
  float, bool, bytes; tuples and lists as Arrow lists, dicts as structs). A column whose values do
  not share one Arrow type is written as JSON text instead (field metadata encoding=json). Parts
  are written by independent tasks, so at job commit `finish_parts` gives every part the one
  schema that holds all of the job's values: the output reads back as one dataset.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from json.encoder import encode_basestring as encode_json_str
from typing import Any

from . import storage
from .errors import OutputError
from .pairs import as_pairs

try:  # the optional C loops (setup.py builds mapreduce/_speedups.c where a compiler exists)
    from ._speedups import text_lines as c_text_lines
except ImportError:
    c_text_lines = None


def _json_default(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return repr(value)


def format_field(value) -> str:
    kind = type(value)
    if kind is str and "\t" not in value and "\n" not in value and "\r" not in value:
        return value
    if kind is int:
        return str(value)
    if kind is tuple:  # a tuple of strs (a bigram) as json.dumps writes it, five times faster
        try:
            return "[" + ", ".join(map(encode_json_str, value)) + "]"
        except TypeError:  # an item that is not a str: json.dumps says how it is written
            pass
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def format_record(key, value) -> str:
    return f"{format_field(key)}\t{format_field(value)}\n"


def _arrow_text(column, checked: bool = True):
    """The column as the text format_field would give each value, computed by Arrow, or None when
    only Python can say (floats, nested values, nulls, strings that need JSON quoting: looked
    for unless not `checked`, when the caller looks for them itself)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        return None
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if checked and _has_line_breaks_or_tabs(column):
            return None
        return column.cast(pa.large_string())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return column.cast(pa.large_string())  # "12", "true": the same as str() / JSON
    return None


def _has_line_breaks_or_tabs(column) -> bool:
    """Whether any string of the (string or large_string) array holds a tab, CR or LF: searched
    for in the bytes of its rows by memchr, several times faster than a regex match per row."""
    import pyarrow as pa

    if not len(column):
        return False
    offset_type = pa.int64() if pa.types.is_large_string(column.type) else pa.int32()
    offsets = pa.Array.from_buffers(
        offset_type, len(column) + 1, [None, column.buffers()[1]], offset=column.offset
    )
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    data = column.buffers()[2]
    text = data.slice(start, end - start).to_pybytes() if data is not None else b""
    return b"\t" in text or b"\n" in text or b"\r" in text


def _arrow_lines(keys, values):
    """`key<TAB>value` lines for whole Arrow columns as one buffer of UTF-8, joined by line
    breaks without the last one, or None when only Python can format them. Copied into place
    by mapreduce._speedups.text_lines where it is built, else joined by Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    checked = c_text_lines is None  # the C loop looks for tabs and line breaks itself
    key_text, value_text = _arrow_text(keys, checked), _arrow_text(values, checked)
    if key_text is None or value_text is None:
        return None
    if c_text_lines is not None:
        return c_text_lines(*_text_buffers(key_text), *_text_buffers(value_text), len(key_text))
    text = pa.large_string()
    lines = pc.binary_join_element_wise(key_text, value_text, pa.scalar("\t", text))
    # All lines joined into one string by Arrow: no Python object per line.
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines)
    joined = pc.binary_join(whole, pa.scalar("\n", text))
    offsets, data = joined.buffers()[1:3]
    length = pa.Array.from_buffers(pa.int64(), 2, [None, offsets])
    start, end = length[0].as_py(), length[1].as_py()
    return data.slice(start, end - start) if data is not None else pa.py_buffer(b"")


def _text_buffers(column) -> tuple:
    """(offsets, data, first row) of a large_string array, as text_lines takes them."""
    _, offsets, data = column.buffers()
    return offsets, data if data is not None else b"", column.offset


def format_table(keys, values) -> str:
    """`key<TAB>value` lines for whole Arrow columns: the same text as format_record row by row."""
    if not len(keys):
        return ""
    lines = _arrow_lines(keys, values)
    if lines is None:
        return "".join(map(format_record, keys.to_pylist(), values.to_pylist()))
    return bytes(lines).decode("utf-8") + "\n"


def part_name(index: int) -> str:
    return f"part-{index:05d}"


OUTPUT_FORMATS = ("text", "jsonl", "parquet")


def part_writer(directory: str, index: int, output_format: str = "text"):
    """The writer of part `index` in the job's output format."""
    kind = {
        "text": PartWriter,
        "jsonl": JsonLinesPartWriter,
        "parquet": ParquetPartWriter,
        "arrow": ArrowPartWriter,
    }
    return kind[output_format](directory, index)


class PartWriter:
    """Writes one text part file under an attempt's directory, atomically, counting records."""

    suffix = ""

    def __init__(self, directory: str, index: int):
        storage.make_dirs(directory)
        self._context = storage.atomic_write(
            storage.join(directory, part_name(index) + self.suffix),
            "w",
            encoding="utf-8",
            newline="\n",
        )
        self._file = self._context.__enter__()
        self.records = 0

    def write(self, key, value) -> None:
        self._file.write(format_record(key, value))
        self.records += 1

    def write_table(self, keys, values) -> None:
        """Write whole Arrow columns of keys and values (the vectorised reduce): as Arrow's bytes
        when Arrow can format them, with no Python str per line or per slice."""
        lines = _arrow_lines(keys, values) if len(keys) else None
        if lines is None:
            self._file.write(format_table(keys, values))
        else:
            self._file.flush()  # the text layer's pending output goes first
            self._file.buffer.write(lines)
            self._file.buffer.write(b"\n")
        self.records += len(keys)

    def write_pairs(self, pairs, producer: str) -> None:
        """Write every (key, value) of an iterable the `producer` ("mapper", "reducer") yielded
        (RecordError for an item that is not a pair). The loop is the reduce side's hot path,
        hence the local names."""
        write, fmt = self._file.write, format_field
        count = 0
        for pair in as_pairs(pairs, producer):
            write(f"{fmt(pair[0])}\t{fmt(pair[1])}\n")
            count += 1
        self.records += count

    def close(self, error: BaseException | None = None) -> None:
        if error is None:
            self._context.__exit__(None, None, None)
        else:
            self._context.__exit__(type(error), error, error.__traceback__)


def _json_line(key, value) -> str:
    return (
        json.dumps({"key": key, "value": value}, ensure_ascii=False, default=_json_default) + "\n"
    )


class JsonLinesPartWriter(PartWriter):
    suffix = ".jsonl"

    def write(self, key, value) -> None:
        self._file.write(_json_line(key, value))
        self.records += 1

    def write_table(self, keys, values) -> None:
        for key, value in zip(keys.to_pylist(), values.to_pylist()):
            self.write(key, value)

    def write_pairs(self, pairs, producer: str) -> None:
        for key, value in as_pairs(pairs, producer):
            self.write(key, value)


ROW_GROUP_ROWS = 128 * 1024  # rows per Parquet row group (fewer when rows are big)
ROW_GROUP_BYTES = 64 * 1024 * 1024  # estimated Python size of the rows gathered for one group
_SIZE_SAMPLE = 1000


class _BufferedRows:
    """Rows gathered until a row group (or file) is due: ROW_GROUP_ROWS, fewer when rows are big
    (sized on the first _SIZE_SAMPLE rows), so a part's writer holds a bounded amount."""

    def __init__(self):
        self._keys: list = []
        self._values: list = []
        self._limit = _SIZE_SAMPLE
        self.records = 0

    def write(self, key, value) -> None:
        self._keys.append(key)
        self._values.append(value)
        self.records += 1
        if len(self._keys) >= self._limit:
            self._flush_rows()

    def write_pairs(self, pairs, producer: str) -> None:
        for key, value in as_pairs(pairs, producer):
            self.write(key, value)

    def _take_rows(self) -> tuple[list, list]:
        if self._limit == _SIZE_SAMPLE and self._keys:
            average = sum(map(_row_size, self._keys, self._values)) / len(self._keys)
            self._limit = max(1, min(ROW_GROUP_ROWS, int(ROW_GROUP_BYTES / average)))
        keys, values, self._keys, self._values = self._keys, self._values, [], []
        return keys, values

    def _flush_rows(self) -> None:
        raise NotImplementedError


class ParquetPartWriter(_BufferedRows):
    """Streams a part into one Parquet file, a row group at a time, so memory stays bounded.

    Each column gets the type pa.array would give all of the part's values at once: when a later
    row group needs a wider type (ints then floats, nulls then strings) the groups written so far
    are rewritten in it, and a column whose values have no common Arrow type becomes JSON text.
    Such rewrites happen at most a few times per part, and never for a column of one type. An
    empty part's columns have the null type: `finish_parts` gives it the job's types at commit."""

    def __init__(self, directory: str, index: int):
        super().__init__()
        storage.make_dirs(directory)
        self.path = storage.join(directory, part_name(index) + ".parquet")
        self._columns: dict = {}  # name -> Arrow type, or JSON_TEXT
        self._writer: Any = None  # a pyarrow.parquet.ParquetWriter once the first group comes
        self._written = False  # whether the local file holds row groups
        self._local = _temporary_parquet(_scratch_dir(directory))

    def write_table(self, keys, values) -> None:
        self._flush_rows()
        self._write_group({"key": (keys, False), "value": (values, False)})
        self.records += len(keys)

    def close(self, error: BaseException | None = None) -> None:
        try:
            if error is None:
                self._flush_rows()
                if not self._written:  # an empty part still gets its file
                    self._write_group(
                        {
                            "key": (_arrow_column([])[0], False),
                            "value": (_arrow_column([])[0], False),
                        }
                    )
                self._writer.close()
                self._writer = None
                _publish(self._local, self.path)
        finally:
            if self._writer is not None:
                self._writer.close()
            _remove_quietly(self._local)

    def _flush_rows(self) -> None:
        if not self._keys:
            return
        keys, values = self._take_rows()
        self._write_group({"key": _arrow_column(keys), "value": _arrow_column(values)})

    def _write_group(self, columns: dict) -> None:
        """columns: name -> (array, whether it is JSON text already)."""
        wanted: dict = {
            name: _widened(self._columns.get(name), array.type, is_json)
            for name, (array, is_json) in columns.items()
        }
        while True:
            try:
                if self._written and wanted != self._columns:
                    self._rewrite(wanted)
                table = _in_kinds(
                    {name: array for name, (array, _) in columns.items()},
                    {
                        name: JSON_TEXT if is_json else array.type
                        for name, (array, is_json) in columns.items()
                    },
                    wanted,
                )
                break
            except _NoCommonType as failed:  # e.g. ints beyond 2**53 and a float: as pa.array
                wanted[failed.column] = JSON_TEXT
        self._columns = wanted
        if self._writer is None:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self._local, table.schema)
        self._writer.write_table(table)
        self._written = True

    def _rewrite(self, wanted: dict) -> None:
        """Write the row groups so far again with the wider column types. After a failure the
        file still holds them in the old types (the writer stays closed)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        rewritten = _temporary_parquet(os.path.dirname(self._local))
        try:
            writer = _copy_in_kinds(self._local, self._columns, wanted, rewritten, keep_open=True)
        except BaseException:
            _remove_quietly(rewritten)
            raise
        os.replace(rewritten, self._local)
        self._writer = writer
        self._columns = dict(wanted)  # a copy: the caller may widen `wanted` further


JSON_TEXT = "json text"  # a column whose values have no common Arrow type
_JSON_METADATA = {b"encoding": b"json"}


class _NoCommonType(Exception):
    """A column's values do not all convert to the type chosen for it: it becomes JSON text."""

    def __init__(self, column: str):
        super().__init__(column)
        self.column = column


def _scratch_dir(directory: str) -> str | None:
    """Where a part is built before storage.atomic_write puts it in place: beside it where that
    is a rename (same filesystem), else this machine's temporary directory (then uploaded)."""
    return directory if storage.supports_atomic_rename(directory) else None


def _temporary_parquet(directory: str | None) -> str:
    handle, path = tempfile.mkstemp(prefix=".part-", suffix=".parquet.tmp", dir=directory)
    os.close(handle)
    return path


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _publish(local: str, location: str) -> None:
    with storage.atomic_write(location, source=local):
        pass


def _part_schema(kinds: dict):
    """The Arrow schema of a part whose columns have these kinds (an Arrow type, or JSON_TEXT)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field(name, pa.string(), metadata=_JSON_METADATA)
            if kind is JSON_TEXT
            else pa.field(name, kind)
            for name, kind in kinds.items()
        ]
    )


def _kinds_of(schema) -> dict:
    return {
        field.name: JSON_TEXT if field.metadata == _JSON_METADATA else field.type
        for field in schema
    }


def _in_kinds(columns: dict, kinds: dict, wanted: dict):
    """A table of the columns (name -> array of kind kinds[name]) in the wanted kinds."""
    import pyarrow as pa

    arrays = []
    for name, array in columns.items():
        try:
            arrays.append(_as_column(array, kinds[name] is JSON_TEXT, wanted[name]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError):
            raise _NoCommonType(name) from None
    return pa.Table.from_arrays(arrays, schema=_part_schema(wanted))


def _copy_in_kinds(source, kinds: dict, wanted: dict, target: str, keep_open: bool = False):
    """Copy the Parquet file `source` (a path or an open file) to the local path `target`, a row
    group at a time, converting its columns from `kinds` to `wanted`. Returns the writer, still
    open, when keep_open (more groups follow), else None. Raises _NoCommonType."""
    import pyarrow.parquet as pq

    old = pq.ParquetFile(source)
    writer = pq.ParquetWriter(target, _part_schema(wanted))
    try:
        for group in range(old.num_row_groups):
            table = old.read_row_group(group)
            writer.write_table(
                _in_kinds({name: table.column(name) for name in kinds}, kinds, wanted)
            )
    except BaseException:
        writer.close()
        raise
    if keep_open:
        return writer
    writer.close()
    return None


def finish_parts(directory: str, output_format: str) -> None:
    """What a job's part files need once every task has written its own, before `_SUCCESS`:
    Parquet parts are given one schema (see unify_parquet_parts); other formats need nothing."""
    if output_format == "parquet":
        unify_parquet_parts(directory)


def unify_parquet_parts(directory: str) -> None:
    """Give every Parquet part of `directory` the same schema, so readers that take a dataset's
    schema from one file (pyarrow, pandas, DuckDB, Spark) read all of them.

    Each task chose its part's column types from its own values: an empty part has null columns,
    one part may hold ints where another holds floats, strs, or JSON text. The common type of a
    column is the one its values would have had in a single part (the same widening as within a
    part: null < int < float, and JSON text when there is none); only parts not already in it are
    rewritten, a row group at a time, and they replace the originals only once all are rewritten,
    so a column that turns out to need JSON text is converted from the original values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = _parquet_parts(directory)
    if not parts:
        return
    try:
        kinds = {}
        for part in parts:
            with storage.arrow_source(part) as source:
                kinds[part] = _kinds_of(pq.read_schema(source))
        names = list(kinds[parts[0]])
        if any(list(part_kinds) != names for part_kinds in kinds.values()):
            raise OutputError(f"the Parquet parts in '{directory}' do not have the same columns")
        as_json: set = set()
        while True:
            wanted: dict = {}
            for name in names:
                for part_kinds in kinds.values():
                    kind = part_kinds[name]
                    wanted[name] = _widened(
                        wanted.get(name),
                        None if kind is JSON_TEXT else kind,
                        kind is JSON_TEXT or name in as_json,
                    )
            try:
                rewritten = _rewritten_parts(
                    {
                        part: part_kinds
                        for part, part_kinds in kinds.items()
                        if part_kinds != wanted
                    },
                    wanted,
                )
                break
            except _NoCommonType as failed:
                as_json.add(failed.column)
    except pa.ArrowException as exc:
        if isinstance(exc, OSError):
            raise
        raise OutputError(f"the Parquet parts could not be given one schema: {exc}") from None
    try:
        for part, local in rewritten.items():
            _publish(local, part)
    finally:
        for local in rewritten.values():
            _remove_quietly(local)  # uploaded copies (a local part was moved into place)


def _parquet_parts(directory: str) -> list:
    names = [relative for _, relative, _ in storage.list_files(directory) if "/" not in relative]
    return sorted(
        storage.join(directory, name)
        for name in names
        if name.startswith("part-") and name.endswith(".parquet")
    )


def _rewritten_parts(stale: dict, wanted: dict) -> dict:
    """Each stale part (location -> its column kinds) copied into the wanted kinds: location ->
    the local file holding the copy. On any failure no copy is left behind."""
    rewritten: dict = {}
    try:
        for part, kinds in stale.items():
            rewritten[part] = _temporary_parquet(_scratch_dir(storage.split(part)[0]))
            with storage.arrow_source(part) as source:
                _copy_in_kinds(source, kinds, wanted, rewritten[part])
    except BaseException:
        for local in rewritten.values():
            _remove_quietly(local)
        raise
    return rewritten


def _row_size(key, value) -> int:
    return sys.getsizeof(key) + sys.getsizeof(value) + 16


def _arrow_column(values: list):
    """(Arrow array of the values' own type, False), or (their JSON text, True) when they have none."""
    import pyarrow as pa

    try:
        return pa.array(values), False
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return _json_text(values), True


def _json_text(values: list):
    import pyarrow as pa

    return pa.array(
        [json.dumps(v, ensure_ascii=False, default=_json_default) for v in values], pa.string()
    )


def _widened(current, arrow_type, is_json):
    """The column type that holds both what was written (`current`) and a new group's values."""
    import pyarrow as pa

    if is_json or current is JSON_TEXT:
        return JSON_TEXT
    if current is None or current == arrow_type:
        return arrow_type
    try:
        unified = pa.unify_schemas(
            [pa.schema([("c", current)]), pa.schema([("c", arrow_type)])],
            promote_options="permissive",
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return JSON_TEXT
    return unified.field("c").type


def _as_column(array, is_json: bool, wanted):
    """An array of a group in the column's final type."""
    if wanted is JSON_TEXT:
        return array if is_json else _json_text(array.to_pylist())
    if array.type == wanted:
        return array
    return array.cast(wanted)


class ArrowPartWriter(_BufferedRows):
    """Between the steps of a multi-step job: pairs in the shuffle's encoding (native columns,
    pickles for other types), read back by the next step as they were. A file is written every
    ROW_GROUP_ROWS rows or so, so memory stays bounded; the next step reads every file of the
    directory in name order, which `arrow_part_names` makes the order they were written in."""

    def __init__(self, directory: str, index: int):
        super().__init__()
        storage.make_dirs(directory)
        self._directory, self._index = directory, index
        self._files = 0

    def write_table(self, keys, values) -> None:
        self._keys += keys.to_pylist()
        self._values += values.to_pylist()
        self.records += len(keys)
        if len(self._keys) >= self._limit:
            self._flush_rows()

    def close(self, error: BaseException | None = None) -> None:
        # After an error the attempt's files are never published, so nothing needs undoing.
        if error is None and (self._keys or not self._files):
            self._flush_rows()

    def _flush_rows(self) -> None:
        from .shuffle import write_run_file

        keys, values = self._take_rows()
        if self._files == 1:  # a second file: the first one takes its number too
            first = arrow_part_names(self._index, 2)[0]
            storage.move(
                storage.join(self._directory, arrow_part_names(self._index, 1)[0]),
                storage.join(self._directory, first),
            )
        names = arrow_part_names(self._index, max(self._files + 1, 1))
        write_run_file(storage.join(self._directory, names[self._files]), keys, values)
        self._files += 1


def arrow_part_names(index: int, count: int) -> list[str]:
    """The names of a part written as `count` Arrow files, in the order they were written, which
    is also their name order: `part-N.arrow` alone, else `part-N-00000.arrow`, `part-N-00001.arrow`,
    ... (`part-N.arrow` would sort after `part-N-00001.arrow`, since "-" < ".")."""
    if count == 1:
        return [f"{part_name(index)}.arrow"]
    return [f"{part_name(index)}-{number:05d}.arrow" for number in range(count)]


# ---- the pieces of a re-planned map-only task, joined into its one part ---------------------------

_SUFFIXES = {"text": "", "jsonl": ".jsonl", "parquet": ".parquet", "arrow": ".arrow"}


def join_parts(
    sources: list, directory: str, index: int, output_format: str, plan: str | None = None
) -> None:
    """Write part `index` of `directory` from the parts of that number in each of `sources` (the
    directories of a re-planned map-only task's pieces, in input order), as the one task would
    have written it: text and jsonl parts are concatenated (each record is a line of its own, so
    the bytes are the same); Parquet rows are read back and written again through one
    ParquetPartWriter (the same row groups and column types as one writer's, for values that
    come back from Parquet as they went in: tuples come back as lists, which Arrow stores alike);
    an "arrow" part (between the steps of a multi-step job) keeps its pieces' files, renamed in
    order, without decoding them (the coordinator never unpickles): the next step reads the same
    pairs in the same order, in files cut at other places. That takes several moves, so they
    are written down first at `plan` (given: a file that lives as long as the pieces), and a join
    cut short by a restart finishes the moves written there."""
    name = part_name(index) + _SUFFIXES[output_format]
    target = storage.join(directory, name)
    if output_format in ("text", "jsonl"):
        with storage.atomic_write(target) as out:
            for source in sources:
                with storage.open_input_stream(storage.join(source, name)) as part:
                    shutil.copyfileobj(part, out, 1024 * 1024)
    elif output_format == "parquet":
        _join_parquet([storage.join(source, name) for source in sources], directory, index)
    elif output_format == "arrow":
        _join_arrow(sources, directory, index, plan)
    else:
        raise ValueError(f"unknown output format {output_format!r}")


def _join_parquet(parts: list, directory: str, index: int) -> None:
    import pyarrow.parquet as pq

    writer = ParquetPartWriter(directory, index)
    try:
        for part in parts:
            with storage.arrow_source(part) as source:
                file = pq.ParquetFile(source)
                as_json = [field.metadata == _JSON_METADATA for field in file.schema_arrow]
                for batch in file.iter_batches():
                    columns = [
                        [json.loads(text) for text in column.to_pylist()]
                        if is_json
                        else column.to_pylist()
                        for column, is_json in zip(batch.columns, as_json)
                    ]
                    for key, value in zip(*columns):
                        writer.write(key, value)
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()


def _join_arrow(sources: list, directory: str, index: int, plan: str | None) -> None:
    if plan is not None and storage.exists(plan):  # a join cut short: finish its moves
        with storage.open_input_stream(plan) as stream:
            moves = json.loads(stream.read().decode("utf-8"))
    else:
        moves = _arrow_join_moves(sources, directory, index)
        if plan is not None:
            with storage.atomic_write(plan, "w", encoding="utf-8") as out:
                json.dump(moves, out)
    for source, target in moves:
        if storage.exists(source):
            storage.move(source, target)


def _arrow_join_moves(sources: list, directory: str, index: int) -> list:
    from .shuffle import count_records

    prefix = part_name(index)
    files = [
        location
        for source in sources
        for location in sorted(
            (
                location
                for location, relative, _ in storage.list_files(source)
                if relative.startswith(prefix) and relative.endswith(".arrow")
            ),
            key=os.path.basename,  # arrow_part_names: name order is the order written
        )
    ]
    kept = [location for location in files if count_records([location])] or files[:1]
    return [
        [location, storage.join(directory, name)]
        for name, location in zip(arrow_part_names(index, len(kept)), kept)
    ]
