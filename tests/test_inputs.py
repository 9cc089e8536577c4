"""Tests of mapreduce.inputs: input discovery, split planning and record reading, on real files."""

from __future__ import annotations

import json
import os
import random
import re

import pytest

from helpers import ROOT
from mapreduce.defaults import MIN_AUTO_SPLIT_BYTES, SPLIT_SIZE_BYTES
from mapreduce.errors import InputError, ProtocolError
from mapreduce.inputs import (
    BATCH_FORMATS,
    INPUT_FORMATS,
    TEXT_FORMATS,
    BadRecord,
    Segment,
    Split,
    automatic_split_size,
    expand_inputs,
    plan_splits,
    read_blocks,
    read_records,
)

MiB = 1024 * 1024

# Text full of the cases a line reader gets wrong: CRLF, a lone CR, empty lines, multi-byte
# characters (a cut can land inside one), invalid UTF-8, and no final newline.
TRICKY = (
    ("héllo wörld\r\n\n€uro\n\r\nlone\rcr\n\xff\n😀😀 emoji\r\nx\r\r\nlast line without newline")
    .encode("utf-8")
    .replace(b"\xc3\xbf", b"\xff\xfe")
)


def reference_lines(data: bytes) -> list[str]:
    """The plain, obviously right reading of a whole file."""
    lines = data.decode("utf-8", "replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def write(path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def lines_of(split_list, input_format="lines", **options) -> list[str]:
    return [
        value for split in split_list for _, value in read_records(split, input_format, **options)
    ]


def segment_lines(path, start, end) -> list[str]:
    return [line for _, line in read_records(Split(0, (Segment(path, start, end),)), "lines")]


def random_text(rng: random.Random, n_lines: int) -> bytes:
    alphabet = "abcdefghij klmnop\tqrstuvwxyz0123456789éü€中😀\r"
    parts = []
    for _ in range(n_lines):
        length = rng.choice([0, 0, 1, 2, 5, 20, 80, rng.randrange(300)])
        line = "".join(rng.choice(alphabet) for _ in range(length))
        parts.append(line + rng.choice(["\n", "\n", "\n", "\r\n"]))
    data = "".join(parts).encode("utf-8")
    if rng.random() < 0.5:
        data = data.rstrip(b"\n")  # sometimes no final newline
    return data


def assert_split_reading_matches(path: str, data: bytes, split_size: int, **options) -> None:
    planned = plan_splits([path], "lines", split_size)
    assert [s.index for s in planned] == list(range(len(planned)))
    pieces = [seg for s in planned for seg in s.segments]
    assert pieces[0].start == 0 and pieces[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(pieces, pieces[1:]))  # no gap, no overlap
    assert lines_of(planned, **options) == reference_lines(data), f"split size {split_size}"


# ---------------------------------------------------------------------------------------------
# Line semantics
# ---------------------------------------------------------------------------------------------


def test_lf_and_crlf_give_the_same_values(tmp_path):
    text = "one\ntwo\n\nfour\n"
    lf = write(tmp_path / "lf.txt", text.encode())
    crlf = write(tmp_path / "crlf.txt", text.replace("\n", "\r\n").encode())
    assert lines_of(plan_splits([lf], "lines", None)) == ["one", "two", "", "four"]
    assert lines_of(plan_splits([crlf], "lines", None)) == ["one", "two", "", "four"]


def test_records_carry_the_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "books" / "a.txt", b"x\ny\n")
    records = list(read_records(plan_splits(["books/a.txt"], "lines", None)[0], "lines"))
    assert records == [("books/a.txt", "x"), ("books/a.txt", "y")]


def test_last_line_without_newline_is_a_record(tmp_path):
    path = write(tmp_path / "a.txt", b"a\nb")
    assert lines_of(plan_splits([path], "lines", None)) == ["a", "b"]


def test_lone_cr_stays_and_only_one_cr_before_lf_is_dropped(tmp_path):
    path = write(tmp_path / "a.txt", b"a\rb\nc\r\r\nd\r")
    assert lines_of(plan_splits([path], "lines", None)) == ["a\rb", "c\r", "d"]


def test_empty_file_has_no_records_but_is_planned(tmp_path):
    path = write(tmp_path / "empty.txt", b"")
    planned = plan_splits([path], "lines", None)
    assert len(planned) == 1
    assert lines_of(planned) == []


def test_only_newlines_give_empty_records(tmp_path):
    path = write(tmp_path / "a.txt", b"\n\n\r\n")
    assert lines_of(plan_splits([path], "lines", None)) == ["", "", ""]


def test_invalid_utf8_becomes_replacement_character(tmp_path):
    path = write(tmp_path / "bad.txt", b"ok\n\xff\xfebad\xc3\n\xe2\x82")
    assert lines_of(plan_splits([path], "lines", None)) == ["ok", "\ufffd\ufffdbad\ufffd", "\ufffd"]


def test_utf8_bom_is_dropped_at_start_of_file_only(tmp_path):
    bom = b"\xef\xbb\xbf"
    path = write(tmp_path / "bom.txt", bom + b"first\n" + bom + b"second\n")
    assert lines_of(plan_splits([path], "lines", None)) == ["first", "\ufeffsecond"]
    # A cut inside the mark itself must neither lose nor duplicate the first line.
    for cut in range(0, 12):
        assert segment_lines(path, 0, cut) + segment_lines(path, cut, 15) == [
            "first",
            "\ufeffsecond",
        ]
    only_bom = write(tmp_path / "only_bom.txt", bom)
    assert lines_of(plan_splits([only_bom], "lines", None)) == []


# ---------------------------------------------------------------------------------------------
# Segment boundaries
# ---------------------------------------------------------------------------------------------


def test_every_single_cut_position_reads_each_line_once(tmp_path):
    path = write(tmp_path / "t.txt", TRICKY)
    expected = reference_lines(TRICKY)
    for cut in range(len(TRICKY) + 1):
        assert segment_lines(path, 0, cut) + segment_lines(path, cut, len(TRICKY)) == expected, cut


def test_every_pair_of_cut_positions_reads_each_line_once(tmp_path):
    data = b"ab\n\ncd\r\ne\n\xc3\xa9f"
    path = write(tmp_path / "t.txt", data)
    expected = reference_lines(data)
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            got = (
                segment_lines(path, 0, first)
                + segment_lines(path, first, second)
                + segment_lines(path, second, len(data))
            )
            assert got == expected, (first, second)


def test_segment_owns_line_starting_exactly_at_its_start(tmp_path):
    path = write(tmp_path / "t.txt", b"aa\nbb\ncc\n")
    assert segment_lines(path, 3, 4) == ["bb"]  # byte 2 is "\n": "bb" starts at 3
    assert segment_lines(path, 4, 6) == []  # "cc" starts at 6, outside [4, 6)
    assert segment_lines(path, 4, 7) == ["cc"]


def test_many_split_sizes_concatenate_to_the_reference(tmp_path):
    path = write(tmp_path / "t.txt", TRICKY * 3)
    data = TRICKY * 3
    newline_sizes = [i for i, byte in enumerate(data) if byte == ord("\n")][:4]
    sizes = {1, 2, 3, 7, 100, 1000}
    sizes |= {n for n in newline_sizes if n > 0} | {n + 1 for n in newline_sizes}
    for split_size in sorted(sizes):
        assert_split_reading_matches(path, data, split_size)


def test_random_text_with_random_split_sizes(tmp_path):
    rng = random.Random(20240229)
    for round_number in range(8):
        data = random_text(rng, rng.randrange(1, 120))
        if round_number == 0:
            data += b"\xff\xfe\xc3\n\xe2\x82\n"  # invalid bytes among the lines
        path = write(tmp_path / f"r{round_number}.txt", data)
        for split_size in [1, 2, 3, 7, 100, 1000, rng.randrange(1, 500)]:
            assert_split_reading_matches(path, data, split_size)


def test_lines_longer_than_the_read_block(tmp_path):
    rng = random.Random(7)
    data = random_text(rng, 60) + b"\n" + "é".encode() * 500 + b"\r\n" + b"z" * 333
    path = write(tmp_path / "long.txt", data)
    for split_size in [1, 5, 16, 17, 31, 100, 1000, len(data)]:
        assert_split_reading_matches(path, data, split_size, block_size=16)


def test_a_real_five_megabyte_line(tmp_path):
    long_line = b"w" * (5 * MiB)
    data = b"before\n" + long_line + b"\r\nafter\n"
    path = write(tmp_path / "huge.txt", data)
    planned = plan_splits([path], "lines", MiB)
    assert len(planned) == 5
    assert lines_of(planned) == ["before", long_line.decode(), "after"]


def test_segment_planned_past_the_end_of_a_shrunken_file(tmp_path):
    path = write(tmp_path / "t.txt", b"a\nb\n")
    assert segment_lines(path, 0, 100) == ["a", "b"]
    assert segment_lines(path, 50, 100) == []


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------


def test_thousands_of_tiny_files_group_into_few_splits(tmp_path):
    paths = [
        write(tmp_path / "many" / f"f{i:04d}.txt", f"file {i}\nsecond {i}\n".encode())
        for i in range(2000)
    ]
    expected = [line for i in range(2000) for line in (f"file {i}", f"second {i}")]
    assert len(plan_splits(paths, "lines", None)) == 1
    planned = plan_splits(paths, "lines", 4096)
    assert 5 <= len(planned) <= 20
    assert all(split.size <= 4096 for split in planned)
    assert lines_of(planned) == expected


def test_big_file_is_cut_and_small_files_are_grouped(tmp_path):
    big = write(tmp_path / "big.txt", b"x" * 999 + b"\n")  # 1000 bytes
    small = [write(tmp_path / f"s{i}.txt", b"y\n") for i in range(3)]
    planned = plan_splits([big] + small, "lines", 300)
    assert [(seg.start, seg.end) for seg in planned[0].segments] == [(0, 300)]
    assert [seg.path for seg in planned[-1].segments] == [big] + small
    assert lines_of(planned) == ["x" * 999, "y", "y", "y"]


def test_slightly_larger_file_is_not_cut_into_a_tiny_tail(tmp_path):
    path = write(tmp_path / "a.txt", b"a" * 1050)
    planned = plan_splits([path], "lines", 1000)
    assert [(s.start, s.end) for split in planned for s in split.segments] == [(0, 1050)]


def test_empty_files_never_crash_and_give_no_records(tmp_path):
    empties = [write(tmp_path / f"e{i}.txt", b"") for i in range(3)]
    full = write(tmp_path / "full.txt", b"a\n" * 10)
    trailing = write(tmp_path / "z.txt", b"")
    planned = plan_splits(empties + [full, trailing], "lines", 5)
    assert [s.index for s in planned] == list(range(len(planned)))
    assert lines_of(planned) == ["a"] * 10
    assert len(plan_splits(empties, "lines", 5)) == 1


def test_automatic_split_size_spreads_over_min_splits(tmp_path):
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as file:
        file.truncate(10 * MiB)  # sparse: a size for os.stat without writing data
    planned = plan_splits([str(sparse)], "lines", None, min_splits=4)
    assert [seg.size for s in planned for seg in s.segments] == [int(2.5 * MiB)] * 4
    # Never below 1 MiB, never above the 64 MiB default.
    assert automatic_split_size(100, 8) == MIN_AUTO_SPLIT_BYTES
    assert automatic_split_size(10**12, 2) <= SPLIT_SIZE_BYTES
    assert automatic_split_size(256 * MiB, 2) == SPLIT_SIZE_BYTES
    # Whole waves: 200 MB on 2 workers is 4 splits of 50 MB, not 64 + 64 + 64 + 8.
    assert automatic_split_size(200 * 10**6, 2) == 50 * 10**6
    assert len(plan_splits([str(sparse)], "lines", None, min_splits=100)) == 10


def test_planning_rejects_bad_arguments(tmp_path):
    path = write(tmp_path / "a.txt", b"a\n")
    with pytest.raises(ValueError, match="input format"):
        plan_splits([path], "xml", None)
    with pytest.raises(ValueError, match="split size"):
        plan_splits([path], "lines", 0)
    with pytest.raises(InputError, match="gone.txt"):
        plan_splits([str(tmp_path / "gone.txt")], "lines", None)
    assert plan_splits([], "lines", None) == []


def test_files_format_yields_whole_text_and_never_cuts(tmp_path):
    a = write(tmp_path / "a.txt", b"line 1\r\nline 2\n" * 100)
    b = write(tmp_path / "b.txt", b"\xef\xbb\xbfsecond \xff file")
    c = write(tmp_path / "c.txt", b"")
    planned = plan_splits([a, b, c], "files", 10)
    assert all(seg.start == 0 for s in planned for seg in s.segments)
    records = [record for split in planned for record in read_records(split, "files")]
    assert records == [(a, "line 1\r\nline 2\n" * 100), (b, "second \ufffd file"), (c, "")]
    assert len(plan_splits([b, c], "files", 1000)) == 1  # small files are grouped


# ---------------------------------------------------------------------------------------------
# The table of readers
# ---------------------------------------------------------------------------------------------


def test_the_readme_lists_every_input_format():
    row = next(
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `INPUT_FORMAT`")
    )
    assert re.findall(r'`"(\w+)"`', row) == list(INPUT_FORMATS)


def test_formats_outside_the_table_are_refused(tmp_path):
    (split,) = plan_splits([write(tmp_path / "a.txt", b"a\n")], "lines", None)
    with pytest.raises(
        ValueError, match="must be one of lines, files, jsonl, csv, parquet, pairs, not 'xml'"
    ):
        read_records(split, "xml")
    with pytest.raises(ValueError, match="map_batches reads 'lines' or 'files' input, not 'jsonl'"):
        read_blocks(split, "jsonl")
    assert TEXT_FORMATS == ("lines", "files", "jsonl", "csv")  # checked for binary content
    assert BATCH_FORMATS == ("lines", "files")


# ---------------------------------------------------------------------------------------------
# Split description and wire format
# ---------------------------------------------------------------------------------------------


def test_describe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "books" / "a.txt", b"x" * 100)
    assert Split(0, (Segment("books/a.txt", 0, 100),)).describe() == "books/a.txt"
    assert Split(0, (Segment("books/a.txt", 0, 50),)).describe() == "books/a.txt bytes 0-50"
    many = tuple(Segment(f"{name}.txt", 0, 1) for name in "abcdefghijkl")
    assert Split(3, many).describe() == "12 files: a.txt, b.txt, c.txt, ..."
    assert Split(3, many[:2]).describe() == "2 files: a.txt, b.txt"


def test_wire_round_trip_through_json(tmp_path):
    split = Split(7, (Segment("a.txt", 0, 10), Segment("dir/b é.txt", 5, 99)))
    assert Split.from_wire(json.loads(json.dumps(split.to_wire()))) == split
    with pytest.raises(ProtocolError):
        Split.from_wire({"index": 1})
    with pytest.raises(ProtocolError):
        Split.from_wire({"index": 1, "segments": [["a", 5, 2]]})
    with pytest.raises(ProtocolError):
        Split.from_wire({"index": 1, "segments": [["a", 0, 2, "bytes", 99]]})


# ---------------------------------------------------------------------------------------------
# Input discovery
# ---------------------------------------------------------------------------------------------


def expanded(inputs) -> list[str]:
    return [file.path for file in expand_inputs(inputs)]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A previous job's output beside ordinary data, in the current directory."""
    monkeypatch.chdir(tmp_path)
    for name in [
        "data/b.txt",
        "data/a.txt",
        "data/sub/c.txt",
        "data/.hidden",
        "data/_SUCCESS",
        "data/_logs/log.txt",
        "data/.git/config",
        "other/z.csv",
        "other/y.csv",
        "other/_skip.csv",
    ]:
        write(tmp_path / name, b"1\n")
    return tmp_path


def test_directory_recursion_skips_hidden_and_underscore_names(tree):
    assert expanded(["data"]) == ["data/a.txt", "data/b.txt", "data/sub/c.txt"]
    assert expanded(["data/"]) == ["data/a.txt", "data/b.txt", "data/sub/c.txt"]


def test_explicit_hidden_files_are_kept(tree):
    assert expanded(["data/_SUCCESS", "data/.hidden"]) == ["data/_SUCCESS", "data/.hidden"]


def test_inputs_keep_the_given_order_and_duplicates_count_once(tree):
    result = expanded(["other", "data/b.txt", "data", "./data/a.txt", "other/y.csv"])
    assert result == ["other/y.csv", "other/z.csv", "data/b.txt", "data/a.txt", "data/sub/c.txt"]


def test_globs(tree):
    assert expanded(["*/*.csv"]) == ["other/y.csv", "other/z.csv"]
    assert expanded(["data/**/*.txt"]) == ["data/a.txt", "data/b.txt", "data/sub/c.txt"]
    assert expanded(["data/*"]) == ["data/a.txt", "data/b.txt", "data/sub/c.txt"]
    assert expanded(["other/_*.csv"]) == ["other/_skip.csv"]


def test_file_with_bracket_in_its_name_is_taken_literally(tree):
    write(tree / "data" / "x[1].txt", b"1\n")
    assert expanded(["data/x[1].txt"]) == ["data/x[1].txt"]


@pytest.mark.parametrize(
    "inputs, message",
    [
        (["missing.txt"], "input path 'missing.txt' does not exist"),
        (["data/*.csv"], "input glob 'data/*.csv' matched no files"),
        (["data/_logs/*.csv"], "input glob 'data/_logs/*.csv' matched no files"),
        ([], "no input"),
    ],
)
def test_input_errors_name_the_path(tree, inputs, message):
    with pytest.raises(InputError, match=message.replace("*", r"\*").replace("(", r"\(")):
        expand_inputs(inputs)


def test_directory_without_usable_files_is_an_error(tree):
    write(tree / "empty" / "_SUCCESS", b"")
    write(tree / "empty" / ".keep", b"")
    with pytest.raises(InputError) as info:
        expand_inputs(["empty"])
    assert str(info.value).startswith(
        "input directory 'empty' contains no files (names starting with '.' or '_' are skipped)"
    )


def test_glob_matching_only_skipped_names_says_so(tree):
    with pytest.raises(InputError, match="'.' or '_' are skipped"):
        expand_inputs(["data/*S*"])  # only _SUCCESS matches


def test_neither_file_nor_directory_is_an_error(tree):
    os.mkfifo(tree / "pipe")
    with pytest.raises(InputError, match="'pipe' is neither a regular file nor a directory"):
        expand_inputs(["pipe"])


def test_broken_symlink_is_an_error(tree):
    os.symlink(tree / "nowhere", tree / "link")
    with pytest.raises(InputError, match="'link'"):
        expand_inputs(["link"])


def test_unreadable_file_is_an_error(tree, monkeypatch):
    # Root reads everything, so unreadability is simulated through os.access, the check used.
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: (not str(path).endswith("b.txt")) and real_access(path, mode),
    )
    with pytest.raises(InputError, match="'data/b.txt' is not readable"):
        expand_inputs(["data/b.txt"])
    with pytest.raises(InputError, match="'data/b.txt' is not readable"):
        expand_inputs(["data"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_by_permissions(tree):
    os.chmod(tree / "data" / "a.txt", 0)
    with pytest.raises(InputError, match="'data/a.txt'"):
        expand_inputs(["data/a.txt"])


def test_symlink_loop_in_a_directory_terminates(tree):
    os.symlink(tree / "data", tree / "data" / "sub" / "loop")
    result = expanded(["data"])
    assert result[:2] == ["data/a.txt", "data/b.txt"]
    assert len({os.path.realpath(path) for path in result}) == len(result) == 3


# ---------------------------------------------------------------------------------------------
# Vectorised reading
# ---------------------------------------------------------------------------------------------

HOSTILE_TEXTS = {
    "crlf and lone cr": b"one\r\ntwo\rstill two\r\n\r\nfive\n",
    "no final newline": b"a\nb\nlast",
    "cr at the very end": b"a\r\nlast\r",
    "invalid utf-8": b"caf\xe9\n\xff\xfe\nok \xc3\n",
    "bom and blank lines": b"\xef\xbb\xbffirst\n\n\n   \nlast\n",
    "only newlines": b"\n\n\n",
    "one long line": b"x" * 2000 + b"\n" + b"y" * 10,
    "unicode": "İstanbul \u2028 sep\u0085 ǅ\n😀\n".encode("utf-8"),
}


@pytest.mark.parametrize("name", HOSTILE_TEXTS)
@pytest.mark.parametrize("split_size", [7, 64, None])
def test_vectorised_blocks_hold_exactly_the_lines_of_the_record_reader(tmp_path, name, split_size):
    # read_blocks builds Arrow arrays without Python strings; it must cut and decode the same lines.
    # Blocks of 5 bytes are cut inside lines and CRLF pairs.
    path = tmp_path / "input.txt"
    path.write_bytes(HOSTILE_TEXTS[name])
    for split in plan_splits([str(path)], "lines", split_size):
        records = [value for _, value in read_records(split, "lines", block_size=5)]
        blocks = [
            line
            for _, values in read_blocks(split, "lines", block_size=5)
            for line in values.to_pylist()
        ]
        assert blocks == records


# ---------------------------------------------------------------------------------------------
# Structured input: work linear in the input, line numbers of bad records
# ---------------------------------------------------------------------------------------------


class ReadCounter:
    """Bytes read through storage's open_input_file / open_input_stream (what a file:// or s3://
    input is read with), by every reader the test runs."""

    def __init__(self, monkeypatch):
        self.total = 0
        from mapreduce import storage

        for name in ("open_input_file", "open_input_stream"):
            opener = getattr(storage, name)
            monkeypatch.setattr(storage, name, self._counting(opener))

    def _counting(self, opener):
        counter = self

        class Counted:
            def __init__(self, inner):
                self._inner = inner

            def read(self, *args):
                data = self._inner.read(*args)
                counter.total += len(data)
                return data

            def read_buffer(self, *args):  # what Arrow's readers call when it exists
                data = self._inner.read_buffer(*args)
                counter.total += data.size
                return data

            def __iter__(self):
                for line in self._inner:
                    counter.total += len(line)
                    yield line

            def __getattr__(self, name):
                return getattr(self._inner, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._inner.close()

        return lambda *args, **kwargs: Counted(opener(*args, **kwargs))


def test_jsonl_bad_records_have_their_file_line_numbers_and_each_byte_is_read_once(
    tmp_path, monkeypatch
):
    block = 256
    lines = [json.dumps({"n": i, "pad": "x" * (i % 40)}) for i in range(4000)]
    bad = [1200, 2500, 3990]  # 0-based, in three different splits far into the file
    for index in bad:
        lines[index] = '{"n": broken'
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    size, longest = path.stat().st_size, max(map(len, lines)) + 1
    reads = ReadCounter(monkeypatch)
    planned = plan_splits([f"file://{path}"], "jsonl", 4096)
    assert len(planned) > 30
    overhead = len(planned) * (2 * block + longest)  # a split reads on to finish its last line

    skipped: list = []
    records = [
        value
        for split in planned
        for _, value in read_records(split, "jsonl", skipped, block_size=block)
    ]
    assert records == [json.loads(line) for i, line in enumerate(lines) if i not in bad]
    assert len(skipped) == len(bad)
    assert size <= reads.total <= size + overhead  # skipping reads no prefix

    reads.total = 0
    failures = []
    for split in planned:
        before = reads.total
        try:
            list(read_records(split, "jsonl", block_size=block))
        except BadRecord as error:
            failures.append(error.line)
            assert "not JSON" in str(error) and f"line {error.line}:" in str(error)
            # the failing split's own bytes, then its prefix, counted once: not per segment
            assert reads.total - before <= split.segments[0].end + 2 * block + longest
    assert failures == [index + 1 for index in bad]
    assert reads.total <= (1 + len(bad)) * size + overhead


def csv_rows(rows: int) -> list[str]:
    """The header and rows of a CSV whose columns change type after the first few KB (so after
    the first read block), with blank lines and quoted values holding commas, quotes and line
    breaks."""
    out = ["word,n,late,empty_first,quoted"]
    for i in range(rows):
        n = 2.5 if i == rows - 3 else i  # ints, then a float
        late = "text" if i == rows - 2 else i  # ints, then a str
        empty_first = "" if i < rows // 2 else i  # nulls, then ints
        quoted = f'"a, ""b"" {i}"' if i % 7 else f'"two\nlines {i}"'
        out.append(f"w{i % 5},{n},{late},{empty_first},{quoted}")
        if i % 100 == 50:
            out.append("")
    return out


def csv_text(rows: int) -> str:
    return "\n".join(csv_rows(rows)) + "\n"


def test_csv_rows_stream_with_the_column_types_of_the_whole_file(tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = tmp_path / "data.csv"
    path.write_text(csv_text(60_000))
    expected = pcsv.read_csv(path)  # the plain reading of the whole file
    assert [str(t) for t in expected.schema.types] == [
        "string",
        "double",
        "string",
        "int64",
        "string",
    ]
    baseline = pa.total_allocated_bytes()
    held = 0
    rows = []
    for split in plan_splits([str(path)], "csv", None):
        for number, (_, row) in enumerate(read_records(split, "csv", block_size=16 * 1024)):
            rows.append(row)
            if number % 1000 == 0:
                held = max(held, pa.total_allocated_bytes() - baseline)
    assert rows == expected.to_pylist()
    assert [type(v) for v in rows[0].values()] == [str, float, str, type(None), str]
    assert path.stat().st_size > 2 * 1024 * 1024 and held < 1024 * 1024  # streams: a few blocks


def test_csv_bad_rows_cost_no_rereading_and_report_their_file_line(tmp_path, monkeypatch):
    lines = csv_rows(20_000)
    for index in sorted((len(lines) - 40 - 100 * k for k in range(30)), reverse=True):
        lines.insert(index, "w1,1,2")  # too few columns, far into the file
    text = "\n".join(lines)
    bad_lines = [number for number, line in enumerate(text.split("\n"), 1) if line == "w1,1,2"]
    assert len(bad_lines) == 30
    path = tmp_path / "data.csv"
    path.write_text(text)
    size = path.stat().st_size
    reads = ReadCounter(monkeypatch)
    (split,) = plan_splits([f"file://{path}"], "csv", None)
    skipped: list = []
    rows = [row for _, row in read_records(split, "csv", skipped, block_size=16 * 1024)]
    assert len(skipped) == len(bad_lines) and len(rows) == 20_000
    # Not once per bad row: a pass that fails on the late word, one typing the blocks, the rows.
    assert reads.total <= 3 * size + 64 * 1024
    reads.total = 0
    with pytest.raises(BadRecord) as failure:
        list(read_records(split, "csv", block_size=16 * 1024))
    assert failure.value.line == bad_lines[0], str(failure.value)
    assert "expected 5 columns, found 3" in str(failure.value)
    assert reads.total <= 4 * size + 64 * 1024  # and the file up to the bad row, once
