"""Reading the records of a split: one reader per INPUT_FORMAT, in the table READERS.

A reader gives the records of one segment of a split: (path, value) for a mapper, where the value
is a line, a whole text ("files"), a parsed JSON object ("jsonl") or a row as a dict ("csv",
"parquet"); "pairs" gives the (key, value) pairs a previous step wrote. The "lines" and "files"
readers also give blocks of values for the vectorised API (map_batches). A reader's entry also says
how planning cuts its files and whether they are text (checked for binary content), so adding a
format is adding an entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain, repeat
from typing import TYPE_CHECKING, Callable, Iterator

from .. import storage
from ..defaults import READ_BLOCK_BYTES
from .badrecords import skip_or_raise
from .csvrows import csv_batches
from .text import arrow_complete_lines, lines_before, read_whole_text, segment_line_batches

if TYPE_CHECKING:
    import pyarrow as pa

    from .plan import Segment, Split

# How planning cuts a format's files (Reader.split_by).
BY_LINE = "line"  # anywhere: the reader of a segment moves each cut to a line start
BY_FILE = "file"  # never: each file is read whole
BY_ROW_GROUP = "row group"  # one split per Parquet row group

_ROWS_PER_BATCH = 64 * 1024  # rows turned into Python dicts at a time


@dataclass(frozen=True)
class Reader:
    """How one INPUT_FORMAT is planned and read."""

    records: Callable  # (segment, block_size, bad_records) -> iterator of records
    split_by: str = BY_FILE
    text: bool = True  # read as UTF-8 text, so a file that looks binary is reported
    blocks: Callable | None = None  # (segment, block_size) -> (path, values) for map_batches


def _line_records(segment: Segment, block_size: int, bad_records: list | None) -> Iterator[tuple]:
    for lines in segment_line_batches(segment, block_size):
        # zip/repeat builds the tuples in C: this is the hot loop of every "lines" job.
        yield from zip(repeat(segment.path), lines)


def _line_blocks(segment: Segment, block_size: int) -> Iterator[tuple]:
    for lines in segment_line_batches(segment, block_size, arrow_complete_lines):
        yield segment.path, lines


def _file_records(segment: Segment, block_size: int, bad_records: list | None) -> Iterator[tuple]:
    yield segment.path, read_whole_text(segment.path)


def _file_blocks(segment: Segment, block_size: int) -> Iterator[tuple]:
    yield segment.path, [read_whole_text(segment.path)]


def _json_records(segment: Segment, block_size: int, bad_records: list | None) -> Iterator[tuple]:
    line_in_segment = 0
    for lines in segment_line_batches(segment, block_size):
        for line in lines:
            line_in_segment += 1
            if not line.strip():
                continue  # blank lines are no records in JSON lines
            try:
                value = json.loads(line)
            except ValueError as exc:
                skip_or_raise(
                    bad_records,
                    segment.path,
                    f"not JSON: {exc}",
                    lambda n=line_in_segment: lines_before(segment, block_size) + n,
                )
                continue
            yield segment.path, value


def _csv_records(segment: Segment, block_size: int, bad_records: list | None) -> Iterator[tuple]:
    yield from _dict_rows(segment.path, csv_batches(segment.path, bad_records, block_size))


def _parquet_records(
    segment: Segment, block_size: int, bad_records: list | None
) -> Iterator[tuple]:
    import pyarrow.parquet as pq

    with storage.arrow_source(segment.path) as source:
        table = pq.ParquetFile(source).read_row_groups(range(segment.start, segment.end))
    yield from _dict_rows(segment.path, table.to_batches(max_chunksize=_ROWS_PER_BATCH))


def _dict_rows(path: str, batches) -> Iterator[tuple]:
    for batch in batches:
        for start in range(0, batch.num_rows, _ROWS_PER_BATCH):
            yield from zip(repeat(path), batch.slice(start, _ROWS_PER_BATCH).to_pylist())


def _pair_records(segment: Segment, block_size: int, bad_records: list | None) -> Iterator[tuple]:
    from ..shuffle import RunReader

    return RunReader(segment.path).records()


READERS = {
    "lines": Reader(_line_records, split_by=BY_LINE, blocks=_line_blocks),
    "files": Reader(_file_records, blocks=_file_blocks),
    "jsonl": Reader(_json_records, split_by=BY_LINE),
    "csv": Reader(_csv_records),
    "parquet": Reader(_parquet_records, split_by=BY_ROW_GROUP, text=False),
    "pairs": Reader(_pair_records, text=False),  # a previous step's output (see steps.py)
}
INPUT_FORMATS = tuple(READERS)
TEXT_FORMATS = tuple(name for name, reader in READERS.items() if reader.text)
BATCH_FORMATS = tuple(name for name, reader in READERS.items() if reader.blocks is not None)


def reader_for(input_format: str) -> Reader:
    try:
        return READERS[input_format]
    except (KeyError, TypeError):
        raise ValueError(
            f"input format must be one of {', '.join(INPUT_FORMATS)}, not {input_format!r}"
        ) from None


def read_records(
    split: Split,
    input_format: str,
    bad_records: list | None = None,
    *,
    block_size: int = READ_BLOCK_BYTES,
) -> Iterator[tuple]:
    """Every record of the split, its segments in order (ValueError at once for an unknown
    format).

    Text is UTF-8 with invalid bytes replaced by U+FFFD; CRLF line endings read as LF; .gz and
    .bz2 files are decompressed. A malformed JSON line or CSV row raises BadRecord, or, when
    `bad_records` is a list, is appended to it and skipped (--skip-bad-records). Files are read
    `block_size` bytes at a time.
    """
    records = reader_for(input_format).records
    # chain runs in C: a "lines" record passes through one Python generator, the reader's.
    return chain.from_iterable(
        records(segment, block_size, bad_records) for segment in split.segments
    )


def read_line_lists(
    split: Split, *, block_size: int = READ_BLOCK_BYTES
) -> Iterator[tuple[str, list[str]]]:
    """(path, lines) a block at a time: the records read_records gives for "lines" input, as one
    list of decoded lines per block read (no tuple per line), for a map loop that takes a block."""
    return chain.from_iterable(
        zip(repeat(segment.path), segment_line_batches(segment, block_size))
        for segment in split.segments
    )


def read_blocks(
    split: Split, input_format: str, *, block_size: int = READ_BLOCK_BYTES
) -> Iterator[tuple[str, "pa.Array | list[str]"]]:
    """(path, values) in blocks of lines, as an Arrow large_string array built without a Python
    object per line (or a one-item list holding a whole file's text): what the vectorised API
    turns into Arrow batches."""
    blocks = reader_for(input_format).blocks
    if blocks is None:
        raise ValueError(
            f"map_batches reads {' or '.join(map(repr, BATCH_FORMATS))} input, not {input_format!r}"
        )
    return chain.from_iterable(blocks(segment, block_size) for segment in split.segments)
