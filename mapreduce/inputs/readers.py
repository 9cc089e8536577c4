"""Reading the records of a split, in the job's INPUT_FORMAT.

read_records gives (path, value) records to a mapper; read_blocks gives blocks of lines as Arrow
arrays to the vectorised API.
"""

from __future__ import annotations

import json
from itertools import repeat
from typing import TYPE_CHECKING, Iterator

from .. import storage
from ..defaults import READ_BLOCK_BYTES
from .badrecords import skip_or_raise
from .csvrows import csv_batches
from .text import arrow_complete_lines, lines_before, read_whole_text, segment_line_batches

if TYPE_CHECKING:
    from .plan import Segment, Split

INPUT_FORMATS = ("lines", "files", "jsonl", "csv", "parquet", "pairs")   # pairs: a previous step's output
LINE_FORMATS = ("lines", "jsonl")          # cut at line boundaries like text
TEXT_FORMATS = ("lines", "files", "jsonl", "csv")   # read as UTF-8 text


def check_input_format(input_format: str) -> None:
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input format must be one of {', '.join(INPUT_FORMATS)}, not {input_format!r}")


def read_records(split: Split, input_format: str, bad_records: list | None = None, *,
                 block_size: int = READ_BLOCK_BYTES) -> Iterator[tuple]:
    """(path, value) for every record of the split: a line, a whole text ("files"), a parsed JSON
    object ("jsonl"), or a row as a dict ("csv", "parquet").

    Text is UTF-8 with invalid bytes replaced by U+FFFD; a "\r" before "\n" is dropped with it;
    .gz and .bz2 files are decompressed. A malformed JSON line or CSV row raises BadRecord, or,
    when `bad_records` is a list, is appended to it and skipped (--skip-bad-records). Files are
    read `block_size` bytes at a time.
    """
    check_input_format(input_format)
    if input_format == "files":
        for segment in split.segments:
            yield segment.path, read_whole_text(segment.path)
        return
    if input_format in ("csv", "parquet"):
        for segment in split.segments:
            yield from _table_rows(segment, input_format, bad_records, block_size)
        return
    if input_format == "pairs":
        from ..shuffle import _Run
        for segment in split.segments:
            yield from _Run(segment.path).records()
        return
    for segment in split.segments:
        if input_format == "jsonl":
            yield from _json_records(segment, block_size, bad_records)
            continue
        for lines in segment_line_batches(segment, block_size):
            # zip/repeat builds the tuples in C: this is the hot loop of every "lines" job.
            yield from zip(repeat(segment.path), lines)


def read_blocks(split: Split, input_format: str, *,
                block_size: int = READ_BLOCK_BYTES) -> Iterator[tuple[str, object]]:
    """(path, values) in blocks of lines, as an Arrow large_string array built without a Python
    object per line (or a one-item list holding a whole file's text): what the vectorised API
    turns into Arrow batches."""
    check_input_format(input_format)
    if input_format == "files":
        for segment in split.segments:
            yield segment.path, [read_whole_text(segment.path)]
        return
    if input_format != "lines":
        raise ValueError(f"map_batches reads 'lines' or 'files' input, not {input_format!r}")
    for segment in split.segments:
        for lines in segment_line_batches(segment, block_size, arrow_complete_lines):
            yield segment.path, lines


def _json_records(segment: Segment, block: int, bad_records: list | None) -> Iterator[tuple]:
    line_in_segment = 0
    for lines in segment_line_batches(segment, block):
        for line in lines:
            line_in_segment += 1
            if not line.strip():
                continue                      # blank lines are no records in JSON lines
            try:
                value = json.loads(line)
            except ValueError as exc:
                skip_or_raise(bad_records, segment.path, f"not JSON: {exc}",
                              lambda: lines_before(segment, block) + line_in_segment)
                continue
            yield segment.path, value


def _table_rows(segment: Segment, input_format: str, bad_records: list | None,
                block: int) -> Iterator[tuple]:
    if input_format == "parquet":
        import pyarrow.parquet as pq
        with storage.arrow_source(segment.path) as source:
            table = pq.ParquetFile(source).read_row_groups(range(segment.start, segment.end))
        batches = table.to_batches(max_chunksize=_ROWS_PER_BATCH)
    else:
        batches = csv_batches(segment.path, bad_records, block)
    for batch in batches:
        for start in range(0, batch.num_rows, _ROWS_PER_BATCH):
            yield from zip(repeat(segment.path), batch.slice(start, _ROWS_PER_BATCH).to_pylist())


_ROWS_PER_BATCH = 64 * 1024     # rows turned into Python dicts at a time
