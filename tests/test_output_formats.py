"""--output-format jsonl and parquet: typed, readable by pyarrow, same records as text."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from helpers import FAST, ROOT, run_cli, small_splits, wordcount_reference


def jsonl_records(out):
    return [json.loads(line) for part in sorted(out.glob("part-*.jsonl"))
            for line in part.read_text(encoding="utf-8").splitlines()]


def parquet_records(out):
    return [row for part in sorted(out.glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]


@pytest.mark.parametrize("job", ["wordcount.py", "wordcount_arrow.py"])
@pytest.mark.parametrize("fmt, reader", [("jsonl", jsonl_records), ("parquet", parquet_records)])
def test_wordcount_in_each_format_matches_the_reference(corpus, tmp_path, job, fmt, reader):
    out = tmp_path / "out"
    result = run_cli("run", ROOT / "jobs" / job, tmp_path / "corpus", "-o", out, "-w", 2, "-r", 3,
                     *small_splits("3KB"), "--output-format", fmt, "-q", *FAST)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS"] + [f"part-{i:05d}.{fmt}" for i in range(3)]
    records = reader(out)
    assert {r["key"]: r["value"] for r in records} == wordcount_reference(corpus)
    assert all(type(r["value"]) is int for r in records)


def test_parquet_keeps_nested_types_and_falls_back_to_json_for_mixed_columns(corpus, tmp_path):
    out = tmp_path / "bigrams"
    result = run_cli("run", ROOT / "jobs/bigrams.py", tmp_path / "corpus", "-o", out, "-w", 2, "-r", 1,
                     "--output-format", "parquet", "-q", *FAST)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out / "part-00000.parquet")
    assert str(table.schema.field("key").type) == "list<element: string>"
    assert all(len(row["key"]) == 2 for row in table.to_pylist())
    mixed = tmp_path / "mixed"
    result = run_cli("run", ROOT / "tests/jobs/typed_keys.py", tmp_path / "corpus", "-o", mixed, "-w", 2,
                     "-r", 1, "--output-format", "parquet", "-q", *FAST)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(mixed / "part-00000.parquet")
    assert str(table.schema.field("key").type) == "string" and str(table.schema.field("value").type) == "int64"


# --- the part writers stream: bounded memory, same types as one pa.array over the whole part ---------

from mapreduce import output                                     # noqa: E402
from mapreduce.shuffle import _Run                               # noqa: E402

COLUMN_CASES = {
    "ints": [1, 2, 3, 4, 5, 6, 7],
    "ints then floats": [1, 2, 3, 4, 2.5, 6, 7],
    "nulls then strings": [None, None, None, None, "a", None, "b"],
    "strings then ints": ["a", "b", "c", "d", 5, "f", "g"],
    "lists widening": [[1], [2], [3], [4], [2.5], [6], [7]],
    "huge int late": [1, 2, 3, 4, 5, 2 ** 70, 7],
    "dicts": [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}, {"a": 5}, {"a": 6}, {"a": 7}],
}


@pytest.mark.parametrize("case", COLUMN_CASES)
def test_parquet_part_streams_row_groups_with_the_types_of_the_whole_part(tmp_path, monkeypatch, case):
    monkeypatch.setattr(output, "_SIZE_SAMPLE", 2)        # row groups of 2 rows: types change mid-part
    monkeypatch.setattr(output, "ROW_GROUP_ROWS", 2)
    values = COLUMN_CASES[case]
    keys = [f"k{i}" for i in range(len(values))]
    writer = output.part_writer(str(tmp_path), 0, "parquet")
    for key, value in zip(keys, values):
        writer.write(key, value)
    writer.close()
    part = pq.ParquetFile(tmp_path / "part-00000.parquet")
    assert part.num_row_groups == 4
    table = part.read()
    whole, is_json = output._arrow_column(values)          # what gathering the whole part gives
    assert table.column("value").type == whole.type
    assert table.column("value").to_pylist() == whole.to_pylist()
    assert (case in ("strings then ints", "huge int late")) == is_json
    assert table.column("key").to_pylist() == keys
    assert [p.name for p in tmp_path.iterdir()] == ["part-00000.parquet"]   # no temporary left


def test_parquet_part_of_a_failed_attempt_leaves_nothing_and_an_empty_part_has_its_file(tmp_path):
    failed = output.part_writer(str(tmp_path / "failed"), 0, "parquet")
    failed.write("a", 1)
    failed.close(RuntimeError("the reducer raised"))
    assert list((tmp_path / "failed").iterdir()) == []
    empty = output.part_writer(str(tmp_path / "empty"), 3, "parquet")
    empty.close()
    table = pq.read_table(tmp_path / "empty" / "part-00003.parquet")
    assert table.num_rows == 0 and table.column_names == ["key", "value"]


def test_arrow_parts_between_steps_are_written_in_bounded_files_and_read_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "_SIZE_SAMPLE", 3)
    monkeypatch.setattr(output, "ROW_GROUP_ROWS", 3)
    pairs = [(f"k{i}", value) for i, value in enumerate([1, 2.5, "x", None, (1, 2), b"b", True, 10, 11, 12])]
    writer = output.part_writer(str(tmp_path), 0, "arrow")
    for key, value in pairs:
        writer.write(key, value)
    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["part-00000-00001.arrow", "part-00000-00002.arrow", "part-00000-00003.arrow",
                     "part-00000.arrow"]
    read = [pair for name in files for pair in _Run(str(tmp_path / name)).records()]
    assert sorted(read, key=lambda pair: int(pair[0][1:])) == pairs
    assert [type(v) for _, v in sorted(read, key=lambda pair: int(pair[0][1:]))] == [type(v) for _, v in pairs]
