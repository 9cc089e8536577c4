"""How records are written to part files, in one of three formats (`--output-format`):

- text (default, `part-NNNNN`): `key<TAB>value` lines of UTF-8. A str is written as it is, anything
  else as JSON text (tuples as arrays); a str containing a tab or a line break is written as JSON
  too, so every line splits back unambiguously at its first tab.
- jsonl (`part-NNNNN.jsonl`): one `{"key": ..., "value": ...}` object per line.
- parquet (`part-NNNNN.parquet`): columns `key` and `value` that keep their types (str, int,
  float, bool, bytes; tuples and lists as Arrow lists, dicts as structs). A column whose values do
  not share one Arrow type is written as JSON text instead.
"""

from __future__ import annotations

import json
import os

from . import storage
from .commit import atomic_file


def _json_default(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return repr(value)


def format_field(value) -> str:
    if type(value) is str and "\t" not in value and "\n" not in value and "\r" not in value:
        return value
    if type(value) is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def format_record(key, value) -> str:
    return f"{format_field(key)}\t{format_field(value)}\n"


def _arrow_text(column):
    """The column as the text format_field would give each value, computed by Arrow, or None when
    only Python can say (floats, nested values, nulls, strings that need JSON quoting)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if column.null_count:
        return None
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return None if pc.any(pc.match_substring_regex(column, "[\t\n\r]")).as_py() else column
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return column.cast(pa.large_string())       # "12", "true": the same as str() / JSON
    return None


def format_table(keys, values) -> str:
    """`key<TAB>value` lines for whole Arrow columns: the same text as format_record row by row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    key_text, value_text = _arrow_text(keys), _arrow_text(values)
    if key_text is None or value_text is None:
        return "".join(map(format_record, keys.to_pylist(), values.to_pylist()))
    lines = pc.binary_join_element_wise(key_text, value_text, pa.scalar("\t", pa.large_string()))
    return "\n".join(lines.to_pylist()) + "\n" if len(lines) else ""


def _make_dirs(directory: str) -> None:
    if storage.is_uri(directory):
        storage.make_dirs(directory)
    else:
        os.makedirs(directory, exist_ok=True)


def part_name(index: int) -> str:
    return f"part-{index:05d}"


OUTPUT_FORMATS = ("text", "jsonl", "parquet")


def part_writer(directory: str, index: int, output_format: str = "text"):
    """The writer of part `index` in the job's output format."""
    kind = {"text": PartWriter, "jsonl": JsonLinesPartWriter, "parquet": ParquetPartWriter,
            "arrow": ArrowPartWriter}
    return kind[output_format](directory, index)


class PartWriter:
    """Writes one text part file under an attempt's directory, atomically, counting records."""

    suffix = ""

    def __init__(self, directory: str, index: int):
        _make_dirs(directory)
        self._context = atomic_file(storage.join(directory, part_name(index) + self.suffix), "w",
                                    encoding="utf-8", newline="\n")
        self._file = self._context.__enter__()
        self.records = 0

    def write(self, key, value) -> None:
        self._file.write(format_record(key, value))
        self.records += 1

    def write_table(self, keys, values) -> None:
        """Write whole Arrow columns of keys and values (the vectorised reduce)."""
        self._file.write(format_table(keys, values))
        self.records += len(keys)

    def write_pairs(self, pairs, check_pair) -> None:
        """Write every (key, value) of an iterable; `check_pair` turns anything else into a pair or
        raises. The loop is the reduce side's hot path, hence the local names."""
        write, fmt = self._file.write, format_field
        count = 0
        for pair in pairs:
            if type(pair) is not tuple or len(pair) != 2:
                pair = check_pair(pair)
            write(f"{fmt(pair[0])}\t{fmt(pair[1])}\n")
            count += 1
        self.records += count

    def close(self, error: BaseException | None = None) -> None:
        if error is None:
            self._context.__exit__(None, None, None)
        else:
            self._context.__exit__(type(error), error, error.__traceback__)


def _json_line(key, value) -> str:
    return json.dumps({"key": key, "value": value}, ensure_ascii=False, default=_json_default) + "\n"


class JsonLinesPartWriter(PartWriter):
    suffix = ".jsonl"

    def write(self, key, value) -> None:
        self._file.write(_json_line(key, value))
        self.records += 1

    def write_table(self, keys, values) -> None:
        for key, value in zip(keys.to_pylist(), values.to_pylist()):
            self.write(key, value)

    def write_pairs(self, pairs, check_pair) -> None:
        for pair in pairs:
            if type(pair) is not tuple or len(pair) != 2:
                pair = check_pair(pair)
            self.write(pair[0], pair[1])


class ParquetPartWriter:
    """Gathers the part's rows, then writes one Parquet file atomically at close."""

    def __init__(self, directory: str, index: int):
        _make_dirs(directory)
        self.path = storage.join(directory, part_name(index) + ".parquet")
        self.keys: list = []
        self.values: list = []
        self.tables: list = []
        self.records = 0

    def write(self, key, value) -> None:
        self.keys.append(key)
        self.values.append(value)
        self.records += 1

    def write_pairs(self, pairs, check_pair) -> None:
        for pair in pairs:
            if type(pair) is not tuple or len(pair) != 2:
                pair = check_pair(pair)
            self.write(pair[0], pair[1])

    def write_table(self, keys, values) -> None:
        import pyarrow as pa
        self.tables.append(pa.table({"key": keys, "value": values}))
        self.records += len(keys)

    def close(self, error: BaseException | None = None) -> None:
        if error is not None:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq
        if self.tables:
            table = pa.concat_tables(self.tables)
        else:
            table = pa.table({"key": _arrow_column(self.keys), "value": _arrow_column(self.values)})
        with atomic_file(self.path, "wb") as handle:
            pq.write_table(table, handle)


def _arrow_column(values: list):
    """Values as one Arrow column of their own type, or as JSON text when they have none."""
    import pyarrow as pa
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([json.dumps(v, ensure_ascii=False, default=_json_default) for v in values],
                        pa.string())


class ArrowPartWriter(ParquetPartWriter):
    """Between the steps of a multi-step job: pairs as an Arrow file in the shuffle's encoding
    (native columns, pickles for other types), read back by the next step as they were."""

    def __init__(self, directory: str, index: int):
        super().__init__(directory, index)
        self.path = storage.join(directory, part_name(index) + ".arrow")

    def write_table(self, keys, values) -> None:
        self.keys += keys.to_pylist()
        self.values += values.to_pylist()
        self.records += len(keys)

    def close(self, error: BaseException | None = None) -> None:
        if error is None:
            from .shuffle import _run_table, _write_table_atomically
            _write_table_atomically(_run_table(self.keys, self.values), self.path)
