"""Input: which files the INPUT arguments name, how they are cut into splits (one per map task),
and how a split's records are read in each INPUT_FORMAT.

    discover.py    INPUT arguments (files, directories, globs, URIs) -> InputFile entries
    plan.py        InputFiles -> Splits (Segment ranges of files); to_wire/from_wire
    readers.py     a Split's records: one reader per INPUT_FORMAT, in the table READERS
    text.py        the lines a segment of a text file owns; whole texts
    csvrows.py     CSV rows, streamed, typed as if the whole file were read at once
    badrecords.py  records that do not parse: fail the task, or skip them
    streams.py     opening input files, local or URIs, decompressing .gz and .bz2
"""

from .badrecords import BadRecord
from .discover import InputFile, expand_inputs, is_pattern, looks_binary
from .plan import (
    Segment,
    Split,
    automatic_split_size,
    check_split_size,
    cut_split,
    plan_splits,
)
from .readers import (
    BATCH_FORMATS,
    INPUT_FORMATS,
    TEXT_FORMATS,
    read_blocks,
    read_line_lists,
    read_records,
    reader_for,
)

__all__ = [
    "BadRecord",
    "InputFile",
    "expand_inputs",
    "is_pattern",
    "looks_binary",
    "Segment",
    "Split",
    "automatic_split_size",
    "check_split_size",
    "cut_split",
    "plan_splits",
    "BATCH_FORMATS",
    "INPUT_FORMATS",
    "TEXT_FORMATS",
    "read_blocks",
    "read_line_lists",
    "read_records",
    "reader_for",
]
