"""The rows of a CSV file, streamed, in the column types of reading the whole file at once."""

from __future__ import annotations

from typing import Iterator

from .badrecords import BadRecord, skip_or_raise
from .streams import open_input
from .text import line_batches


def csv_batches(path: str, bad_records: list | None, block: int) -> Iterator:
    """The rows of a CSV file as Arrow record batches, streamed: memory holds a few read blocks
    (of `block` bytes).

    Column types are those of reading the whole file at once (pyarrow.csv.read_csv: a column of
    ints with one float is a float column, one with a word a str column), which streaming alone
    cannot give: Arrow's streaming reader takes the types of the first block and fails on a later
    block that does not fit them. So the file is read twice, both times streaming: once to settle
    the types (_csv_column_types; a type changing after the first block costs one more reading),
    once to convert with them."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    invalid: list = []

    def on_invalid(row) -> str:
        # Exceptions raised in here are swallowed by Arrow, so rows are collected and judged after.
        invalid.append(row)
        return "skip"

    def judge_invalid_rows() -> None:
        for row in invalid:
            skip_or_raise(
                bad_records,
                path,
                f"{row.text!r:.80}: expected {row.expected_columns} "
                f"columns, found {row.actual_columns}",
                lambda row=row: _line_number_of(path, row.text, block),
            )
        invalid.clear()

    try:
        column_types = _csv_column_types(path, block)
        with open_input(path) as stream:
            reader = pcsv.open_csv(
                stream,
                read_options=_csv_read_options(block),
                parse_options=_csv_parse_options(on_invalid),
                convert_options=pcsv.ConvertOptions(column_types=column_types),
            )
            for batch in reader:
                judge_invalid_rows()
                yield batch
    except pa.ArrowInvalid as exc:
        raise BadRecord(path, None, str(exc)) from None
    judge_invalid_rows()  # those found while the last batch was read


def _csv_read_options(block: int):
    import pyarrow.csv as pcsv

    return pcsv.ReadOptions(block_size=block)


def _csv_parse_options(on_invalid):
    import pyarrow.csv as pcsv

    # newlines_in_values: blocks are cut between rows, never inside a quoted value's line break.
    return pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)


def _csv_column_types(path: str, block: int) -> dict:
    """Column name -> the type read_csv would give the whole file, found streaming. Arrow's
    streaming reader types the columns from the first block; when every later block converts to
    those types, they are the file's. Otherwise (a float or a word further on) each block's raw
    values are typed by Arrow's own CSV inference and the types widened across blocks."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    skip = _csv_parse_options(lambda row: "skip")
    with open_input(path) as stream:
        reader = pcsv.open_csv(stream, read_options=_csv_read_options(block), parse_options=skip)
        try:
            for _ in reader:
                pass
            return {field.name: field.type for field in reader.schema}
        except pa.ArrowInvalid:  # a later block does not fit the first block's types
            names = reader.schema.names
    types: dict = {}
    with open_input(path) as stream:
        raw = pcsv.ConvertOptions(column_types={name: pa.binary() for name in names})
        for batch in pcsv.open_csv(
            stream, read_options=_csv_read_options(block), parse_options=skip, convert_options=raw
        ):
            for name, column in zip(names, batch.columns):
                types[name] = _wider_csv_type(
                    types.get(name), _inferred_csv_type(column, types.get(name))
                )
    return {name: types.get(name, pa.null()) for name in names}


def _inferred_csv_type(values, so_far=None):
    """The type Arrow's CSV reader infers for these raw values (a binary array): they are written
    back as a one-column CSV, quoted when any holds a quote, comma or line break (quoting changes
    no value's type: quoted and unquoted null markers are both nulls), and read back. A column
    already of type str (`so_far`) can only stay one, or be binary: only UTF-8 is checked."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    if not len(values):
        return pa.null()
    if so_far is not None and (pa.types.is_string(so_far) or pa.types.is_binary(so_far)):
        try:
            values.cast(pa.string())
            return pa.string()
        except pa.ArrowInvalid:
            return pa.binary()

    def joined(array) -> bytes:
        whole = pa.ListArray.from_arrays(pa.array([0, len(array)], pa.int32()), array)
        return pc.binary_join(whole, b"\n")[0].as_py()

    text = joined(values)
    if b'"' in text or b"," in text or b"\r" in text or text.count(b"\n") != len(values) - 1:
        text = joined(
            pc.binary_join_element_wise(b'"', pc.replace_substring(values, b'"', b'""'), b'"', b"")
        )
    table = pcsv.read_csv(
        pa.py_buffer(text),
        read_options=pcsv.ReadOptions(column_names=["c"], use_threads=False),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
    )
    return table.schema.field("c").type


def _wider_csv_type(current, new):
    """The type that holds a column's values typed `current` so far and a block's typed `new`, as
    read_csv loosens a column's type: null < int < float, dates < timestamps (the finer unit);
    anything else becomes str (or binary when a block is not UTF-8)."""
    import pyarrow as pa

    if current is None or pa.types.is_null(current):
        return new
    if pa.types.is_null(new) or new == current:
        return current
    if pa.types.is_binary(current) or pa.types.is_binary(new):
        return pa.binary()
    if {current, new} == {pa.int64(), pa.float64()}:
        return pa.float64()
    times = [kind for kind in (current, new) if pa.types.is_timestamp(kind)]
    if times and all(
        pa.types.is_timestamp(kind) or pa.types.is_date32(kind) for kind in (current, new)
    ):
        return max(times, key=lambda kind: ["s", "ms", "us", "ns"].index(kind.unit))
    return pa.string()


def _line_number_of(path: str, text: str, block: int) -> int | None:
    """The number of the first line that reads as the bad CSV row `text` starts (a row being bad
    for its text alone, an earlier line the same would have been found bad first). The file is
    read again up to it, a block at a time: once, as the task fails."""
    first = text.split("\n", 1)[0].rstrip("\r")
    number = 0
    with open_input(path) as stream:
        for lines in line_batches(iter(lambda: stream.read(block), b"")):
            try:
                return number + lines.index(first) + 1
            except ValueError:
                number += len(lines)
    return None
