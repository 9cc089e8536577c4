"""Split planning: the input files cut and grouped into splits, one per map task.

Splits are planned from file sizes alone, without reading any data: a text file is cut at byte
offsets and its readers move each cut to a line start (see text.py). Small files are grouped into
one split (like Hadoop's CombineFileInputFormat) so that thousands of tiny files make a few tasks
rather than thousands. A split travels to its worker as a small JSON-able dict (to_wire).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Iterable

from .. import storage
from ..defaults import MIN_AUTO_SPLIT_BYTES, MIN_SPLIT_SIZE_BYTES, SPLIT_SIZE_BYTES
from ..errors import InputError, MapReduceError, ProtocolError
from ..sizes import size_text
from .discover import InputFile
from .readers import BY_LINE, BY_ROW_GROUP, reader_for
from .streams import compression_of

# A file is only cut when what remains is more than this many split sizes, so a file slightly
# larger than the split size is not followed by a tiny task for its last few bytes (Hadoop's
# SPLIT_SLOP).
SPLIT_SLOP = 1.1


@dataclass(frozen=True)
class Segment:
    """The bytes [start, end) of one file; owns the lines whose first byte lies in that range."""

    path: str
    start: int
    end: int
    unit: str = "bytes"  # or "row groups" for Parquet
    # The whole file's size when planning knew it, so describe() shortens a segment covering it
    # to the path without asking again; not sent on the wire, not part of equality.
    file_size: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(
                f"segment of {self.path!r} has an invalid byte range {self.start}-{self.end}"
            )

    @property
    def size(self) -> int:
        return self.end - self.start

    def is_whole_file(self) -> bool:
        # Only used to shorten messages, so a file that vanished simply gets its byte range shown.
        if self.start != 0 or self.unit != "bytes":
            return False
        if self.file_size is not None:
            return self.end == self.file_size
        if storage.is_uri(self.path):  # no request per split just for a message
            return False
        try:
            return os.stat(self.path).st_size == self.end
        except Exception:
            return False

    def describe(self) -> str:
        if self.is_whole_file():
            return self.path
        if self.unit != "bytes" and self.end == self.start + 1:
            return f"{self.path} {self.unit[:-1]} {self.start}"
        return f"{self.path} {self.unit} {self.start}-{self.end}"


@dataclass(frozen=True)
class Split:
    """The input of one map task: one or more segments, read in order."""

    index: int
    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        # Accept a list from callers but keep the dataclass hashable and immutable.
        if not isinstance(self.segments, tuple):
            object.__setattr__(self, "segments", tuple(self.segments))

    @property
    def size(self) -> int:
        return sum(segment.size for segment in self.segments)

    def describe(self) -> str:
        """Short human text naming the input, for error messages."""
        if not self.segments:
            return "no input"
        if len(self.segments) == 1:
            return self.segments[0].describe()
        paths = list(dict.fromkeys(segment.path for segment in self.segments))
        if len(paths) == 1:
            return f"{paths[0]} bytes {self.segments[0].start}-{self.segments[-1].end}"
        shown = ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
        return f"{len(paths)} files: {shown}"

    def to_wire(self) -> dict:
        """A JSON-serialisable dict; `from_wire` rebuilds the same Split."""
        return {
            "index": self.index,
            "segments": [
                [segment.path, segment.start, segment.end]
                + ([] if segment.unit == "bytes" else [segment.unit])
                for segment in self.segments
            ],
        }

    @classmethod
    def from_wire(cls, data: dict) -> Split:
        try:
            segments = tuple(_segment_from_wire(fields) for fields in data["segments"])
            return cls(_wire_int(data["index"]), segments)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(
                f"a split received from a peer does not parse ({exc}): {data!r:.200}"
            ) from None


def _segment_from_wire(fields: list) -> Segment:
    # [path, start, end] or [path, start, end, unit]: a segment's file size is not sent.
    path, start, end, *unit = fields
    if len(unit) > 1:
        raise TypeError(
            f"expected [path, start, end] or [path, start, end, unit], got {len(fields)} fields"
        )
    kind = _wire_str(unit[0]) if unit else "bytes"
    return Segment(_wire_str(path), _wire_int(start), _wire_int(end), kind)


def _wire_int(value: object) -> int:
    # bool is an int subclass; a true/false where a byte offset belongs is a malformed message.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _wire_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a path string, got {value!r}")
    return value


def plan_splits(
    files: Iterable[InputFile | str], input_format: str, split_size: int | None, min_splits: int = 1
) -> list[Split]:
    """Splits covering `files` in order, indexed 0..n-1; at least one when there is a file.
    `files`: what expand_inputs found, or paths (their sizes are then asked for here).

    The format's reader says how its files are cut (Reader.split_by): BY_LINE, a file larger
    than the split size is cut into segments of about split_size bytes (a compressed file never
    is); BY_FILE, each file is read whole. In both, small files and pieces are grouped into one
    split until it would exceed split_size. BY_ROW_GROUP: one split per Parquet row group.
    split_size=None picks it from the total input size.
    """
    split_by = reader_for(input_format).split_by
    if min_splits < 1:
        raise ValueError(f"min_splits must be at least 1, not {min_splits}")
    entries = [file if isinstance(file, InputFile) else InputFile(file) for file in files]
    sizes = [(entry.path, _file_size(entry)) for entry in entries]
    if split_size is None:
        split_size = automatic_split_size(sum(size for _, size in sizes), min_splits)
    elif split_size < 1:
        raise ValueError(f"split size must be at least 1 byte, not {split_size}")
    if split_by == BY_ROW_GROUP:
        pieces = [piece for path, _ in sizes for piece in _row_groups(path)]
        return [Split(index, (piece,)) for index, piece in enumerate(pieces)]
    if split_by == BY_LINE:
        pieces = [
            piece
            for path, size in sizes
            for piece in (
                [Segment(path, 0, size, file_size=size)]
                if compression_of(path)
                else _cut_file(path, size, split_size)
            )
        ]
    else:
        pieces = [Segment(path, 0, size, file_size=size) for path, size in sizes]
    groups = _group_segments(pieces, split_size)
    return [Split(index, tuple(group)) for index, group in enumerate(groups)]


def cut_split(
    split: Split, split_by: str, min_piece_bytes: int = MIN_SPLIT_SIZE_BYTES
) -> list[Split]:
    """The smaller splits a map task's split is re-planned into when its attempts keep losing
    their process (os._exit, a crash, the OOM killer), in order, together reading exactly what
    the split reads; [] when it cannot be cut any further. A pure function of its arguments, so
    the same split is always cut the same way (a coordinator replaying its journal gets the
    same pieces).

    A split of several segments (small files grouped, or the pieces of a file) gives one split per
    segment. A single segment is cut in two halves: a Parquet segment by row group; a byte range
    only where the format's reader moves a cut to a line start by itself (`split_by` is BY_LINE:
    lines, jsonl) and the file is not compressed, and only while each half keeps at least
    `min_piece_bytes` (tiny tasks cost more than they read). Whole-file formats (files, csv,
    pairs) are never cut inside a file. Each piece keeps the split's index: its map task's part.
    """
    if len(split.segments) > 1:
        return [Split(split.index, (segment,)) for segment in split.segments]
    if not split.segments:
        return []
    (segment,) = split.segments
    if segment.unit == "bytes":
        if (
            split_by != BY_LINE
            or compression_of(segment.path)
            or segment.size < 2 * max(1, min_piece_bytes)
        ):
            return []
    elif segment.size < 2:  # one row group
        return []
    middle = segment.start + segment.size // 2
    return [
        Split(split.index, (replace(segment, end=middle),)),
        Split(split.index, (replace(segment, start=middle),)),
    ]


def check_split_size(split_size: int | None, minimum: int = MIN_SPLIT_SIZE_BYTES) -> None:
    """Refuse a --split-size below `minimum` (--min-split-size): every split is a map task, and
    tiny tasks cost far more to schedule, start and commit than they read."""
    if split_size is not None and split_size < minimum:
        raise MapReduceError(
            f"--split-size {size_text(split_size)} is below the minimum split size of "
            f"{size_text(minimum)}. Every split is a map task, and tasks that small spend far "
            f"more time being scheduled and committed than reading (one-byte splits of a 3 MB "
            f"input make 17,640 map tasks: 40 s instead of 0.2 s). "
            f"Leave --split-size out to spread the input over the workers, or give "
            f"{size_text(minimum)} or more; to cut smaller splits anyway (say, many tasks out "
            f"of a tiny test input), lower the minimum with --min-split-size too."
        )


def _row_groups(path: str) -> list[Segment]:
    """One segment per Parquet row group: a Parquet file splits by row group."""
    import pyarrow.parquet as pq

    try:
        with storage.arrow_source(path) as source:
            count = pq.ParquetFile(source).metadata.num_row_groups
    except Exception as exc:
        raise InputError(f"input file '{path}' is not a readable Parquet file: {exc}") from None
    return [Segment(path, group, group + 1, "row groups") for group in range(count)]


def automatic_split_size(total_bytes: int, min_splits: int = 1) -> int:
    """Spread the input over `min_splits` workers, but never into pieces below
    MIN_AUTO_SPLIT_BYTES (per-task overhead would dominate) nor above SPLIT_SIZE_BYTES."""
    # Whole waves: the task count is a multiple of the workers, so no wave ends with idle workers
    # waiting on one last task (200 MB on 2 workers: 4 x 50 MB, not 64 + 64 + 64 + 8).
    workers = max(1, min_splits)
    waves = max(1, math.ceil(total_bytes / (workers * SPLIT_SIZE_BYTES)))
    spread = math.ceil(total_bytes / (workers * waves))
    return min(SPLIT_SIZE_BYTES, max(MIN_AUTO_SPLIT_BYTES, spread))


def _file_size(file: InputFile) -> int:
    """The size listing gave, else asked for now."""
    if file.size is not None:
        return file.size
    try:
        return storage.size(file.path)
    except Exception as exc:
        reason = storage.describe_error(file.path, "read the input file", exc).paragraph()
        raise InputError(
            f"{reason} It was found a moment ago while planning splits: was it removed or moved?"
        ) from None


def _cut_file(path: str, size: int, split_size: int) -> list[Segment]:
    """Cut by offset only: the reader moves each cut to a line boundary, so no scanning here."""
    pieces = []
    start = 0
    while size - start > split_size * SPLIT_SLOP:
        pieces.append(Segment(path, start, start + split_size, file_size=size))
        start += split_size
    pieces.append(Segment(path, start, size, file_size=size))
    return pieces


def _group_segments(pieces: Iterable[Segment], split_size: int) -> list[list[Segment]]:
    """Pack consecutive pieces into groups of at most split_size bytes (a single larger piece
    gets a group of its own). Empty pieces never open a group of their own unless there is
    nothing else: a task that reads nothing is wasted."""
    groups: list[list[Segment]] = []
    current: list[Segment] = []
    current_bytes = 0
    for piece in pieces:
        if current_bytes > 0 and current_bytes + piece.size > split_size:
            groups.append(current)
            current, current_bytes = [], 0
        current.append(piece)
        current_bytes += piece.size
        if current_bytes >= split_size:
            groups.append(current)
            current, current_bytes = [], 0
    if current:
        if current_bytes == 0 and groups:
            groups[-1].extend(current)  # trailing empty files ride along with the last split
        else:
            groups.append(current)
    return groups
