"""UTF-8 text input: the lines a segment of a file owns, and a whole file's text.

A segment [start, end) of a file owns every line whose first byte lies inside it (Hadoop's
LineRecordReader rule), so a cut may land anywhere: the reader of a segment finishes its last line
past `end`, and a reader that starts at start > 0 skips the partial line that belongs to the
previous segment. Every line is therefore read exactly once, whatever the cut points.

Text is UTF-8 with invalid bytes replaced by U+FFFD; CRLF line endings read as LF; a byte order
mark at the start of a file is dropped.
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Iterable, Iterator

from .streams import compression_of, open_input, open_raw

try:  # the optional C loops (setup.py builds mapreduce/_speedups.c where a compiler exists)
    from mapreduce._speedups import split_lines as c_split_lines
except ImportError:
    c_split_lines = None

if TYPE_CHECKING:
    from .plan import Segment

_UTF8_BOM = b"\xef\xbb\xbf"


def read_whole_text(path: str) -> str:
    """A whole file's text (decompressed), as the "files" format reads it."""
    with open_input(path) as file:
        data = file.read()
    return _without_bom(data).decode("utf-8", "replace")


def _without_bom(data: bytes) -> bytes:
    # Editors on Windows often start UTF-8 files with a byte order mark; users never mean it as
    # part of their first record, so it is dropped (at offset 0 only).
    return data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data


def segment_line_batches(segment: Segment, block: int, lines_of=None) -> Iterator:
    """The lines owned by `segment`, one batch per block read: lists of decoded lines, or what
    `lines_of` makes of a block of complete lines."""
    if segment.start == segment.end:
        return
    if compression_of(segment.path):
        # A compressed file is one whole segment: stream it decompressed from the start.
        with open_input(segment.path) as file:
            head = file.read(len(_UTF8_BOM))
            chunks = chain([_without_bom(head)], iter(lambda: file.read(block), b""))
            yield from line_batches(chunks, lines_of)
        return
    with open_raw(segment.path) as file:
        first, head = _first_owned_line(file, segment.start, block)
        if first >= segment.end:
            return
        if first == 0:
            first, head = _bom_length(file), b""
        yield from line_batches(_owned_bytes(file, first, segment.end, block, head), lines_of)


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
            return offset + newline + 1, data[newline + 1 :]
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
        newline = data.find(b"\n")  # past `end`: finish the last owned line
        if newline >= 0:
            yield data[: newline + 1]
            return
        yield data


def line_batches(chunks: Iterable[bytes], lines_of=None) -> Iterator:
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


def arrow_complete_lines(data: bytes):
    """The same lines as _decode_complete_lines, as one Arrow array: no Python str is made per
    line (a third of a vectorised word count's map time otherwise). Cut and copied once by
    mapreduce._speedups.split_lines where it is built (text that is not valid UTF-8 then goes
    the slower way, which replaces invalid bytes), else split by Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if c_split_lines is not None:
        offsets, text = c_split_lines(data)
        lines = pa.Array.from_buffers(
            pa.large_string(),
            len(offsets) // 8 - 1,
            [None, pa.py_buffer(offsets), pa.py_buffer(text)],
        )
        try:
            lines.validate(full=True)  # UTF-8, as decode() checks it
            return lines
        except pa.ArrowInvalid:
            pass  # invalid bytes: replaced by U+FFFD below
    text = data.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    return lines.slice(0, len(lines) - 1)  # the empty string after the final newline


def lines_before(segment: Segment, block: int) -> int:
    """How many lines of the file precede the segment's first line: read only to report a bad
    record, so reading a file costs no prefix per segment."""
    if segment.start == 0:
        return 0
    # The segment's first line starts after the first newline at or after start - 1; the lines
    # before it are the newlines before start - 1, plus that one.
    count = 0
    with open_raw(segment.path) as file:
        remaining = segment.start - 1
        while remaining > 0:
            data = file.read(min(block, remaining))
            if not data:
                break
            count += data.count(b"\n")
            remaining -= len(data)
    return count + 1
