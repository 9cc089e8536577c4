"""Input discovery, split planning, and reading the records of one split.

Splits are planned from file sizes alone, without reading any data. A segment [start, end) of a
file owns every line whose first byte lies inside it (Hadoop's LineRecordReader rule), so a cut
may land anywhere: the reader of a segment finishes its last line past `end`, and a reader that
starts at start > 0 skips the partial line that belongs to the previous segment. Every line is
therefore read exactly once, whatever the cut points.

Small files are grouped into one split (like Hadoop's CombineFileInputFormat) so that thousands of
tiny files make a few tasks rather than thousands.
"""

from __future__ import annotations

import fnmatch
import glob
import math
import json
import os
import re
import stat
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain, repeat
from pathlib import PurePath
from typing import Iterable, Iterator

from . import storage
from .defaults import (BINARY_CHECK_BYTES, MIN_AUTO_SPLIT_BYTES, MIN_SPLIT_SIZE_BYTES,
                       READ_BLOCK_BYTES, SPLIT_SIZE_BYTES)
from .errors import InputError, MapReduceError, ProtocolError

INPUT_FORMATS = ("lines", "files", "jsonl", "csv", "parquet", "pairs")   # pairs: a previous step's output
LINE_FORMATS = ("lines", "jsonl")          # cut at line boundaries like text
TEXT_FORMATS = ("lines", "files", "jsonl", "csv")   # read as UTF-8 text
COMPRESSED = {".gz": "gzip", ".bz2": "bz2"}   # decompressed on the fly; never cut: one split a file

# A file is only cut when what remains is more than this many split sizes, so a file slightly
# larger than the split size is not followed by a tiny task for its last few bytes (Hadoop's
# SPLIT_SLOP).
SPLIT_SLOP = 1.1

_GLOB_CHARS = "*?["
_SKIPPED_NAME_STARTS = (".", "_")
_UTF8_BOM = b"\xef\xbb\xbf"
_SKIPPED_NOTE = "names starting with '.' or '_' are skipped"


# ----------------------------------------------------------------------------------------------
# Segments and splits
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """The bytes [start, end) of one file; owns the lines whose first byte lies in that range."""

    path: str
    start: int
    end: int
    unit: str = "bytes"       # or "row groups" for Parquet

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"segment of {self.path!r} has an invalid byte range "
                             f"{self.start}-{self.end}")

    @property
    def size(self) -> int:
        return self.end - self.start

    def is_whole_file(self) -> bool:
        # Only used to shorten messages, so a file that vanished simply gets its byte range shown.
        if self.start != 0 or self.unit != "bytes":
            return False
        try:
            if storage.is_uri(self.path):      # no request per split just for a message
                return _listed_sizes.get(self.path) == self.end
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
        return {"index": self.index,
                "segments": [[segment.path, segment.start, segment.end]
                             + ([] if segment.unit == "bytes" else [segment.unit])
                             for segment in self.segments]}

    @classmethod
    def from_wire(cls, data: dict) -> Split:
        try:
            segments = tuple(Segment(_wire_str(path), _wire_int(start), _wire_int(end),
                                     *(_wire_str(unit) for unit in rest))
                             for path, start, end, *rest in data["segments"])
            return cls(_wire_int(data["index"]), segments)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"a split received from a peer does not parse ({exc}): "
                                f"{data!r:.200}") from None


def _wire_int(value: object) -> int:
    # bool is an int subclass; a true/false where a byte offset belongs is a malformed message.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _wire_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a path string, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------------
# Input discovery
# ----------------------------------------------------------------------------------------------

def expand_inputs(inputs: list[str]) -> list[str]:
    """The input files named by files, directories and globs, in the user's spelling.

    Inputs keep the order given, each directory's or glob's files sorted; a file reached twice
    counts once, where it was first reached.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # one path passed bare would otherwise be iterated character by character
    if not inputs:
        raise InputError("no input was given: pass at least one input file, directory or glob")
    found: list[str] = []
    seen: set[str] = set()
    for item in inputs:
        for path in _expand_one(storage.normalize(os.fspath(item))):
            identity = path if storage.is_uri(path) else os.path.realpath(path)
            if identity not in seen:
                seen.add(identity)
                found.append(path)
    return found


def _expand_one(item: str) -> list[str]:
    if storage.is_uri(item):
        return _expand_uri(item)
    if is_pattern(item):
        return _expand_glob(item)
    return _expand_path(item)


def is_pattern(item: str) -> bool:
    """True when an input is taken as a glob: a local path with *, ? or [ that names no existing
    file (a real file whose name contains '[', say "a[1].txt", is taken literally)."""
    return not storage.is_uri(item) and _is_glob(item) and not os.path.lexists(item)


# Sizes of objects seen while listing a prefix, so planning and describing splits right after
# needs no request per object (a HEAD each: minutes for many thousands of objects).
_listed_sizes: dict[str, int] = {}


def _expand_uri(uri: str) -> list[str]:
    """An object (file), or every file below a prefix (directory), skipping names that start with
    '.' or '_' as for local directories. URIs take no globs: '?' starts a URI's query."""
    from pyarrow.fs import FileType
    try:
        info = storage.file_info(uri)
        if info.type == FileType.File:
            _listed_sizes[uri] = info.size
            return [uri]
        if info.type == FileType.Directory:
            listed = [(found, size) for found, relative, size in storage.list_files(uri)
                      if not any(map(_is_skipped_name, relative.split("/")))]
            _listed_sizes.update(listed)
            files = [found for found, _ in listed]
            if not files:
                raise InputError(f"input directory {uri!r} contains no files ({_SKIPPED_NOTE}); "
                                 f"put input files in it or pass other inputs")
            return files
        if not storage.bucket_exists(uri):
            raise InputError(f"input {uri!r} does not exist: there is no bucket "
                             f"'{storage.bucket_of(uri)}' at that endpoint; check the spelling, "
                             f"the endpoint (AWS_ENDPOINT_URL) and the credentials")
    except MapReduceError as exc:
        raise InputError(exc.paragraph()) from None
    except Exception as exc:
        raise InputError(storage.describe_error(uri, "read input", exc).paragraph()) from None
    raise InputError(f"input path {uri!r} does not exist; check the spelling (no object and no "
                     f"prefix of that name)")


def _is_glob(text: str) -> bool:
    return any(char in text for char in _GLOB_CHARS)


def _expand_path(path: str) -> list[str]:
    info = _stat_input(path)
    if stat.S_ISDIR(info.st_mode):
        files = _files_under(path)
        if not files:
            raise InputError(f"input directory {path!r} contains no files ({_SKIPPED_NOTE}); "
                             f"put input files in it or pass other inputs")
        return files
    if stat.S_ISREG(info.st_mode):
        _check_readable(path)
        return [path]
    raise InputError(f"input path {path!r} is neither a regular file nor a directory "
                     f"(a device, pipe or socket?); pass files or directories instead")


def _stat_input(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise InputError(f"input path {path!r} is a symbolic link to something that does not "
                             f"exist; fix the link or leave it out") from None
        raise InputError(f"input path {path!r} does not exist; check the spelling and the "
                         f"current directory ({os.getcwd()})") from None
    except PermissionError:
        raise InputError(f"input path {path!r} cannot be read: permission denied on it or on a "
                         f"directory above it; fix the permissions or leave it out") from None
    except OSError as exc:
        raise InputError(f"input path {path!r} cannot be read ({exc.strerror}); "
                         f"check it or leave it out") from None


def _check_readable(path: str) -> None:
    if not os.access(path, os.R_OK):
        raise InputError(f"input file {path!r} is not readable (permission denied); "
                         f"fix its permissions (chmod +r) or leave it out")


def _files_under(top: str) -> list[str]:
    """Sorted readable regular files below `top`, skipping names starting with '.' or '_'.

    Skipping '_' names makes a previous job's output directory (with _SUCCESS, _logs/) a valid
    input, as in Hadoop.
    """
    files = []
    for directory, subdirectories, names in _walk_once(top):
        subdirectories[:] = [name for name in subdirectories if not _is_skipped_name(name)]
        for name in names:
            path = os.path.join(directory, name)
            if not _is_skipped_name(name) and os.path.isfile(path):
                files.append(path)
    files.sort()
    for path in files:
        _check_readable(path)
    return files


def _walk_once(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk following symlinked directories, but entering each real directory only once, so a
    link pointing back up the tree does not loop forever."""
    visited: set[str] = set()
    for directory, subdirectories, names in os.walk(top, onerror=_raise_unreadable_directory,
                                                     followlinks=True):
        real = os.path.realpath(directory)
        if real in visited:
            subdirectories[:] = []
            continue
        visited.add(real)
        yield directory, subdirectories, names


def _raise_unreadable_directory(error: OSError) -> None:
    raise InputError(f"input directory {error.filename!r} cannot be listed ({error.strerror}); "
                     f"fix its permissions or leave it out")


def _is_skipped_name(name: str) -> bool:
    return name.startswith(_SKIPPED_NAME_STARTS)


def _expand_glob(pattern: str) -> list[str]:
    files: list[str] = []
    skipped_any = False
    for match in sorted(glob.glob(pattern, recursive=True)):
        if _glob_picked_skipped_name(pattern, match):
            skipped_any = True
        elif os.path.isdir(match):
            files.extend(_files_under(match))
        elif os.path.isfile(match):
            _check_readable(match)
            files.append(match)
    if not files:
        note = f" ({_SKIPPED_NOTE})" if skipped_any else ""
        raise InputError(f"input glob {pattern!r} matched no files{note}; check the pattern and "
                         f"the current directory ({os.getcwd()})")
    return sorted(dict.fromkeys(files))


def _glob_picked_skipped_name(pattern: str, match: str) -> bool:
    """True when a wildcard reached a name starting with '.' or '_' that the pattern did not ask for.

    So `out/*` skips out/_SUCCESS and out/_logs like a directory input does, while `out/_*` or
    `_staging/*.txt` still reach such names because the pattern spells them out.
    """
    asked = [part for part in PurePath(pattern).parts if _is_skipped_name(part)]
    for part in PurePath(match).parts:
        if part == ".." or not _is_skipped_name(part):
            continue
        if not any(fnmatch.fnmatchcase(part, wanted) for wanted in asked):
            return True
    return False


# ----------------------------------------------------------------------------------------------
# Split planning
# ----------------------------------------------------------------------------------------------

def plan_splits(files: list[str], input_format: str, split_size: int | None,
                min_splits: int = 1) -> list[Split]:
    """Splits covering `files` in order, indexed 0..n-1; at least one when there is a file.

    "lines": a file larger than the split size is cut into segments of about split_size bytes;
    "files": each file is one record and is never cut. In both, small files are grouped into one
    split until it would exceed split_size. split_size=None picks it from the total input size.
    """
    _check_input_format(input_format)
    if min_splits < 1:
        raise ValueError(f"min_splits must be at least 1, not {min_splits}")
    sizes = [(path, _file_size(path)) for path in files]
    if split_size is None:
        split_size = automatic_split_size(sum(size for _, size in sizes), min_splits)
    elif split_size < 1:
        raise ValueError(f"split size must be at least 1 byte, not {split_size}")
    if input_format == "parquet":
        pieces = [piece for path, _ in sizes for piece in _row_groups(path)]
        return [Split(index, (piece,)) for index, piece in enumerate(pieces)]
    if input_format in LINE_FORMATS:
        pieces = [piece for path, size in sizes for piece in
                  ([Segment(path, 0, size)] if compression_of(path) else _cut_file(path, size, split_size))]
    else:
        pieces = [Segment(path, 0, size) for path, size in sizes]
    groups = _group_segments(pieces, split_size)
    return [Split(index, tuple(group)) for index, group in enumerate(groups)]


def looks_binary(path: str) -> bool:
    """Whether an input read as text looks binary: a NUL byte in its first BINARY_CHECK_BYTES
    (decompressed), the test git and grep use. A file that cannot be read says False here; its
    task reports why."""
    try:
        with _open_input(path) as file:
            head = file.read(BINARY_CHECK_BYTES)
    except Exception:
        return False
    return b"\0" in head


def check_split_size(split_size: int | None, minimum: int = MIN_SPLIT_SIZE_BYTES) -> None:
    """Refuse a --split-size below `minimum` (--min-split-size): every split is a map task, and
    tiny tasks cost far more to schedule, start and commit than they read."""
    if split_size is not None and split_size < minimum:
        raise MapReduceError(
            f"--split-size {_size_text(split_size)} is below the minimum split size of "
            f"{_size_text(minimum)}. Every split is a map task, and tasks that small spend far "
            f"more time being scheduled and committed than reading (one-byte splits of a 3 MB "
            f"input make 17,640 map tasks: 40 s instead of 0.2 s). "
            f"Leave --split-size out to spread the input over the workers, or give "
            f"{_size_text(minimum)} or more; to cut smaller splits anyway (say, many tasks out "
            f"of a tiny test input), lower the minimum with --min-split-size too.")


def _size_text(size: int) -> str:
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} byte" + ("" if size == 1 else "s")


def compression_of(path: str) -> str | None:
    if storage.is_uri(path):
        path = storage.path_part(path)        # "s3://b/x.gz?scheme=http" is a .gz object
    return COMPRESSED.get(os.path.splitext(path)[1].lower())


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


def _check_input_format(input_format: str) -> None:
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input format must be one of {', '.join(INPUT_FORMATS)}, not {input_format!r}")


def _file_size(path: str) -> int:
    if storage.is_uri(path):
        if path in _listed_sizes:
            return _listed_sizes[path]
        try:
            return storage.size(path)
        except Exception as exc:
            raise InputError(storage.describe_error(path, "read the input file", exc).paragraph()) from None
    try:
        return os.stat(path).st_size
    except OSError as exc:
        raise InputError(f"input file {path!r} cannot be read while planning splits "
                         f"({exc.strerror}); was it removed or moved?") from None


def _cut_file(path: str, size: int, split_size: int) -> list[Segment]:
    """Cut by offset only: the reader moves each cut to a line boundary, so no scanning here."""
    pieces = []
    start = 0
    while size - start > split_size * SPLIT_SLOP:
        pieces.append(Segment(path, start, start + split_size))
        start += split_size
    pieces.append(Segment(path, start, size))
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


# ----------------------------------------------------------------------------------------------
# Reading records
# ----------------------------------------------------------------------------------------------

class BadRecord(Exception):
    """A record that does not parse (malformed JSON line or CSV row), with where it is."""

    def __init__(self, path: str, line: int | None, cause: str):
        self.path, self.line, self.cause = path, line, cause
        where = f"{path}, line {line}" if line else path
        super().__init__(f"malformed record in {where}: {cause}")


def read_records(split: Split, input_format: str, bad_records: list | None = None) -> Iterator[tuple]:
    """(path, value) for every record of the split: a line, a whole text ("files"), a parsed JSON
    object ("jsonl"), or a row as a dict ("csv", "parquet").

    Text is UTF-8 with invalid bytes replaced by U+FFFD; a "\r" before "\n" is dropped with it;
    .gz and .bz2 files are decompressed. A malformed JSON line or CSV row raises BadRecord, or,
    when `bad_records` is a list, is appended to it and skipped (--skip-bad-records).
    """
    _check_input_format(input_format)
    if input_format == "files":
        for segment in split.segments:
            yield segment.path, _read_whole_text(segment.path)
        return
    if input_format in ("csv", "parquet"):
        for segment in split.segments:
            yield from _table_rows(segment, input_format, bad_records)
        return
    if input_format == "pairs":
        from .shuffle import RunReader
        for segment in split.segments:
            yield from RunReader(segment.path).records()
        return
    # Looked up per call (not at import) so tests can shrink the block size.
    block = READ_BLOCK_BYTES
    for segment in split.segments:
        if input_format == "jsonl":
            yield from _json_records(segment, block, bad_records)
            continue
        for lines in _segment_line_batches(segment, block):
            # zip/repeat builds the tuples in C: this is the hot loop of every "lines" job.
            yield from zip(repeat(segment.path), lines)


def read_blocks(split: Split, input_format: str) -> Iterator[tuple[str, object]]:
    """(path, values) in blocks of lines, as an Arrow large_string array built without a Python
    object per line (or a one-item list holding a whole file's text): what the vectorised API
    turns into Arrow batches."""
    _check_input_format(input_format)
    if input_format == "files":
        for segment in split.segments:
            yield segment.path, [_read_whole_text(segment.path)]
        return
    if input_format != "lines":
        raise ValueError(f"map_batches reads 'lines' or 'files' input, not {input_format!r}")
    block = READ_BLOCK_BYTES
    for segment in split.segments:
        for lines in _segment_line_batches(segment, block, _arrow_complete_lines):
            yield segment.path, lines


def _json_records(segment: Segment, block: int, bad_records: list | None) -> Iterator[tuple]:
    line_in_segment = 0
    for lines in _segment_line_batches(segment, block):
        for line in lines:
            line_in_segment += 1
            if not line.strip():
                continue                      # blank lines are no records in JSON lines
            try:
                value = json.loads(line)
            except ValueError as exc:
                _bad(bad_records, segment.path, f"not JSON: {exc}",
                     lambda: _lines_before(segment) + line_in_segment)
                continue
            yield segment.path, value


def _bad(bad_records: list | None, path: str, cause: str, line_number) -> None:
    """A malformed record: raise BadRecord naming its line (`line_number()`, asked only here:
    finding it may read the file again up to the record, once, as the task fails), or, with
    --skip-bad-records, count it and go on, never looking for its line (which, per skipped
    record, would read the input again and again)."""
    if bad_records is None:
        raise BadRecord(path, line_number(), cause)
    bad_records.append(BadRecord(path, None, cause))


def _lines_before(segment: Segment) -> int:
    """How many lines of the file precede the segment's first line: read only to report a bad
    record, so reading a file costs no prefix per segment."""
    if segment.start == 0:
        return 0
    # The segment's first line starts after the first newline at or after start - 1; the lines
    # before it are the newlines before start - 1, plus that one.
    count = 0
    with _open_raw(segment.path) as file:
        remaining = segment.start - 1
        while remaining > 0:
            data = file.read(min(READ_BLOCK_BYTES, remaining))
            if not data:
                break
            count += data.count(b"\n")
            remaining -= len(data)
    return count + 1


def _table_rows(segment: Segment, input_format: str, bad_records: list | None) -> Iterator[tuple]:
    if input_format == "parquet":
        import pyarrow.parquet as pq
        with storage.arrow_source(segment.path) as source:
            table = pq.ParquetFile(source).read_row_groups(range(segment.start, segment.end))
        batches = table.to_batches(max_chunksize=_ROWS_PER_BATCH)
    else:
        batches = _csv_batches(segment.path, bad_records)
    for batch in batches:
        for start in range(0, batch.num_rows, _ROWS_PER_BATCH):
            yield from zip(repeat(segment.path), batch.slice(start, _ROWS_PER_BATCH).to_pylist())


_ROWS_PER_BATCH = 64 * 1024     # rows turned into Python dicts at a time


def _csv_batches(path: str, bad_records: list | None) -> Iterator:
    """The rows of a CSV file as Arrow record batches, streamed: memory holds a few read blocks.

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
            _bad(bad_records, path, f"{row.text!r:.80}: expected {row.expected_columns} columns, "
                                    f"found {row.actual_columns}", lambda: _line_number_of(path, row.text))
        invalid.clear()

    try:
        column_types = _csv_column_types(path)
        with _open_input(path) as stream:
            reader = pcsv.open_csv(stream, read_options=_csv_read_options(),
                                   parse_options=_csv_parse_options(on_invalid),
                                   convert_options=pcsv.ConvertOptions(column_types=column_types))
            for batch in reader:
                judge_invalid_rows()
                yield batch
    except pa.ArrowInvalid as exc:
        raise BadRecord(path, None, str(exc)) from None
    judge_invalid_rows()        # those found while the last batch was read


def _csv_read_options():
    import pyarrow.csv as pcsv
    # Looked up per call (not at import) so tests can shrink the block size.
    return pcsv.ReadOptions(block_size=READ_BLOCK_BYTES)


def _csv_parse_options(on_invalid):
    import pyarrow.csv as pcsv
    # newlines_in_values: blocks are cut between rows, never inside a quoted value's line break.
    return pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)


def _csv_column_types(path: str) -> dict:
    """Column name -> the type read_csv would give the whole file, found streaming. Arrow's
    streaming reader types the columns from the first block; when every later block converts to
    those types, they are the file's. Otherwise (a float or a word further on) each block's raw
    values are typed by Arrow's own CSV inference and the types widened across blocks."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    skip = _csv_parse_options(lambda row: "skip")
    with _open_input(path) as stream:
        reader = pcsv.open_csv(stream, read_options=_csv_read_options(), parse_options=skip)
        try:
            for _ in reader:
                pass
            return {field.name: field.type for field in reader.schema}
        except pa.ArrowInvalid:          # a later block does not fit the first block's types
            names = reader.schema.names
    types: dict = {}
    with _open_input(path) as stream:
        raw = pcsv.ConvertOptions(column_types={name: pa.binary() for name in names})
        for batch in pcsv.open_csv(stream, read_options=_csv_read_options(), parse_options=skip,
                                   convert_options=raw):
            for name, column in zip(names, batch.columns):
                types[name] = _wider_csv_type(types.get(name), _inferred_csv_type(column, types.get(name)))
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
        text = joined(pc.binary_join_element_wise(b'"', pc.replace_substring(values, b'"', b'""'),
                                                   b'"', b""))
    table = pcsv.read_csv(pa.py_buffer(text),
                          read_options=pcsv.ReadOptions(column_names=["c"], use_threads=False),
                          parse_options=pcsv.ParseOptions(newlines_in_values=True))
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
    if times and all(pa.types.is_timestamp(kind) or pa.types.is_date32(kind) for kind in (current, new)):
        return max(times, key=lambda kind: ["s", "ms", "us", "ns"].index(kind.unit))
    return pa.string()


def _line_number_of(path: str, text: str) -> int | None:
    """The number of the first line that reads as the bad CSV row `text` starts (a row being bad
    for its text alone, an earlier line the same would have been found bad first). The file is
    read again up to it, a block at a time: once, as the task fails."""
    first = text.split("\n", 1)[0].rstrip("\r")
    number = 0
    with _open_input(path) as stream:
        for lines in _line_batches(iter(lambda: stream.read(READ_BLOCK_BYTES), b"")):
            try:
                return number + lines.index(first) + 1
            except ValueError:
                number += len(lines)
    return None


def _open_raw(path: str):
    """The file's bytes, seekable (on an object store each read is a ranged request)."""
    return storage.open_input_file(path) if storage.is_uri(path) else open(path, "rb")


def _open_input(path: str):
    """The file's bytes, decompressed when it is .gz or .bz2."""
    kind = compression_of(path)
    if storage.is_uri(path):
        return storage.open_input_stream(path, kind)
    if kind == "gzip":
        import gzip
        return gzip.open(path, "rb")
    if kind == "bz2":
        import bz2
        return bz2.open(path, "rb")
    return open(path, "rb")


def _read_whole_text(path: str) -> str:
    with _open_input(path) as file:
        data = file.read()
    return _without_bom(data).decode("utf-8", "replace")


def _without_bom(data: bytes) -> bytes:
    # Editors on Windows often start UTF-8 files with a byte order mark; users never mean it as
    # part of their first record, so it is dropped (at offset 0 only).
    return data[len(_UTF8_BOM):] if data.startswith(_UTF8_BOM) else data


def _segment_line_batches(segment: Segment, block: int, lines_of=None) -> Iterator:
    """The lines owned by `segment`, one batch per block read: lists of decoded lines, or what
    `lines_of` makes of a block of complete lines."""
    if segment.start == segment.end:
        return
    if compression_of(segment.path):
        # A compressed file is one whole segment: stream it decompressed from the start.
        with _open_input(segment.path) as file:
            head = file.read(len(_UTF8_BOM))
            chunks = chain([_without_bom(head)], iter(lambda: file.read(block), b""))
            yield from _line_batches(chunks, lines_of)
        return
    with _open_raw(segment.path) as file:
        first, head = _first_owned_line(file, segment.start, block)
        if first >= segment.end:
            return
        if first == 0:
            first, head = _bom_length(file), b""
        yield from _line_batches(_owned_bytes(file, first, segment.end, block, head), lines_of)


def _first_owned_line(file, start: int, block: int) -> tuple[int, bytes]:
    """Offset of the first line starting at or after `start` (or the end of the file), and the
    bytes from there that were read to find it (the file is positioned after them).

    Reading from start-1 means that when the byte before `start` is itself a newline, the line
    at `start` is kept: it starts inside this segment.
    """
    if start == 0:
        return 0, b""
    offset = start - 1
    file.seek(offset)
    while True:
        data = file.read(block)
        if not data:
            return offset, b""
        newline = data.find(b"\n")
        if newline >= 0:
            return offset + newline + 1, data[newline + 1:]
        offset += len(data)


def _bom_length(file) -> int:
    # See _without_bom for why a leading byte order mark is dropped.
    file.seek(0)
    return len(_UTF8_BOM) if file.read(len(_UTF8_BOM)) == _UTF8_BOM else 0


def _owned_bytes(file, position: int, end: int, block: int, head: bytes = b"") -> Iterator[bytes]:
    """The raw bytes from `position` up to `end`, then on through the newline that finishes the
    last owned line (the line holding byte end-1), or to the end of the file. `head`: bytes from
    `position` already read (the file is positioned after them), so no byte is read twice."""
    if not head:
        file.seek(position)
    remaining = end - position
    for data in chain([head] if head else [], iter(lambda: file.read(block), b"")):
        if remaining > 0:
            if len(data) <= remaining:
                remaining -= len(data)
                yield data
                if remaining == 0 and data.endswith(b"\n"):
                    return
                continue
            owned, data = data[:remaining], data[remaining:]
            remaining = 0
            yield owned
            if owned.endswith(b"\n"):
                return
        newline = data.find(b"\n")            # past `end`: finish the last owned line
        if newline >= 0:
            yield data[:newline + 1]
            return
        yield data


def _line_batches(chunks: Iterable[bytes], lines_of=None) -> Iterator:
    """Decoded lines from raw chunks cut anywhere (`lines_of(complete_lines)` makes each batch).

    Each chunk is cut at its last newline and decoded once: a newline byte never occurs inside a
    multi-byte UTF-8 sequence, so such a cut never splits a character. The rest is carried over;
    it is kept as a list of parts so a line longer than many blocks is joined only once.
    """
    lines_of = lines_of or _decode_complete_lines
    carried: list[bytes] = []
    for data in chunks:
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carried.append(data)
            continue
        head = data if cut == len(data) else data[:cut]
        if carried:
            carried.append(head)
            head = b"".join(carried)
            carried = []
        yield lines_of(head)
        if cut < len(data):
            carried.append(data[cut:])
    if carried:
        # A last line without a final newline is still a record (and "\r" before the end of
        # the file is a CRLF ending cut short, so it goes like the one before a newline).
        carried.append(b"\n")
        yield lines_of(b"".join(carried))


def _decode_complete_lines(data: bytes) -> list[str]:
    """Lines of `data`, which ends with a newline; CRLF endings give the same values as LF."""
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        # Only "\r\n" pairs are touched: a lone "\r" elsewhere in a line stays part of it.
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    lines.pop()  # the empty string after the final newline is not a record
    return lines


def _arrow_complete_lines(data: bytes):
    """The same lines as _decode_complete_lines, as one Arrow array: the text is split by Arrow,
    so no Python str is made per line (a third of a vectorised word count's map time otherwise)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    return lines.slice(0, len(lines) - 1)   # the empty string after the final newline


# ----------------------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------------------

_SIZE_PATTERN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(i?b)?|(b))?\s*", re.IGNORECASE)
_UNIT_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """Bytes in a size such as "64MB", "64MiB", "64m", "1.5GB", "512k" or "1000".

    K, M, G and T mean 1024-based multiples with or without "B"/"iB": that is what users of
    --split-size expect, and the framework's own defaults are counted that way.
    """
    match = _SIZE_PATTERN.fullmatch(str(text))
    if not match:
        raise ValueError(f"invalid size {text!r}: use a number of bytes, or a number followed by "
                         f"K, M, G or T (1024-based), e.g. 64MB, 512k or 1.5G")
    number, unit = match.group(1), (match.group(2) or "").lower()
    # Fraction keeps large byte counts exact, where a float would round them.
    size = int(Fraction(number) * 1024 ** _UNIT_POWERS.get(unit, 0))
    if size <= 0:
        raise ValueError(f"invalid size {text!r}: it must be at least 1 byte")
    return size
