"""--output-format jsonl and parquet: typed, readable by pyarrow, same records as text."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from conftest import FAST, ROOT, run_cli, wordcount_reference


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
                     "--split-size", "3KB", "--output-format", fmt, "-q", *FAST)
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
