"""Compressed text, JSON lines, CSV and Parquet inputs; malformed records fail or are skipped."""

from __future__ import annotations

import bz2
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq

from helpers import (
    FAST,
    JOBS,
    ROOT,
    read_counts,
    run_cli,
    small_splits,
    wordcount_reference,
    write_corpus,
)


def test_gzip_and_bz2_text_read_like_the_plain_files(tmp_path):
    plain = write_corpus(tmp_path / "plain", files=2, lines=400)
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "a.txt.gz").write_bytes(gzip.compress(plain[0].read_bytes()))
    (packed / "b.txt.bz2").write_bytes(bz2.compress(plain[1].read_bytes()))
    out = tmp_path / "out"
    result = run_cli(
        "run", ROOT / "jobs/wordcount.py", packed, "-o", out, "-w", 2, *small_splits("1KB"), *FAST
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(plain)
    assert "2 map tasks" in result.stderr  # one split per compressed file


def write_records(tmp_path):
    rows = [{"word": w, "n": n} for n, w in enumerate(["river", "sea", "river", "lake"] * 50, 1)]
    expected = {}
    for row in rows:
        expected[row["word"]] = expected.get(row["word"], 0) + row["n"]
    return rows, expected


def test_jsonl_split_across_tasks_and_a_malformed_line(tmp_path):
    rows, expected = write_records(tmp_path)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        out,
        "-w",
        2,
        *small_splits("1KB"),
        "-q",
        *FAST,
        env={"FORMAT": "jsonl"},
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == expected
    lines = data.read_text().splitlines()
    lines.insert(120, '{"word": "broken", ')
    data.write_text("\n".join(lines) + "\n")
    failed = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        tmp_path / "bad",
        "-w",
        2,
        *small_splits("1KB"),
        "--max-attempts",
        1,
        *FAST,
        env={"FORMAT": "jsonl"},
    )
    assert failed.returncode == 1
    assert f"{data}, line 121: not JSON" in failed.stderr and not (tmp_path / "bad").exists()
    skipped = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        tmp_path / "skip",
        "-w",
        2,
        *small_splits("1KB"),
        "--skip-bad-records",
        *FAST,
        env={"FORMAT": "jsonl"},
    )
    assert skipped.returncode == 0, skipped.stderr
    assert read_counts(tmp_path / "skip") == expected and "1 malformed skipped" in skipped.stderr


def test_csv_rows_as_dicts_and_a_malformed_row(tmp_path):
    rows, expected = write_records(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text("word,n\n" + "".join(f"{r['word']},{r['n']}\n" for r in rows))
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        out,
        "-w",
        2,
        "-q",
        *FAST,
        env={"FORMAT": "csv"},
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == expected
    with open(data, "a") as handle:
        handle.write("sea,1,extra\n")
    failed = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        tmp_path / "bad",
        "--max-attempts",
        1,
        *FAST,
        env={"FORMAT": "csv"},
    )
    assert failed.returncode == 1 and f"{data}, line {len(rows) + 2}" in failed.stderr
    skipped = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        tmp_path / "skip",
        "--skip-bad-records",
        "-q",
        *FAST,
        env={"FORMAT": "csv"},
    )
    assert skipped.returncode == 0 and read_counts(tmp_path / "skip") == expected


def test_parquet_rows_one_split_per_row_group(tmp_path):
    rows, expected = write_records(tmp_path)
    data = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data, row_group_size=60)
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        out,
        "-w",
        2,
        *FAST,
        env={"FORMAT": "parquet"},
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == expected
    assert "4 map tasks" in result.stderr  # 200 rows in row groups of 60


def test_csv_larger_than_a_read_block_keeps_late_types_and_names_a_late_bad_row(tmp_path):
    # Over 4 MiB (one read block): the file is streamed; a float in "n" near the end still makes
    # the whole column float, as reading the file at once would; a bad row near the end is named
    # by its line.
    count = 480_000
    rows = [(f"w{i % 7}", 2.5 if i == count - 5 else i) for i in range(count)]
    lines = ["word,n"] + [f"{word},{n}" for word, n in rows]
    expected: dict = {}
    for word, n in rows:
        expected[word] = expected.get(word, 0.0) + n
    data = tmp_path / "data.csv"
    data.write_text("\n".join(lines) + "\n")
    assert data.stat().st_size > 4 * 1024 * 1024
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        out,
        "-w",
        2,
        "-q",
        *FAST,
        env={"FORMAT": "csv"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counts = read_counts(out)
    assert counts == expected and all(type(total) is float for total in counts.values())
    lines.insert(len(lines) - 10, "w1,1,extra")
    data.write_text("\n".join(lines) + "\n")
    failed = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        tmp_path / "bad",
        "--max-attempts",
        1,
        *FAST,
        env={"FORMAT": "csv"},
        timeout=120,
    )
    assert failed.returncode == 1
    assert (
        f"{data}, line {len(lines) - 10}: 'w1,1,extra': expected 2 columns, found 3"
        in failed.stderr
    )
    assert not (tmp_path / "bad").exists()
    skipped = run_cli(
        "run",
        JOBS / "structured_sum.py",
        data,
        "-o",
        tmp_path / "skip",
        "--skip-bad-records",
        *FAST,
        env={"FORMAT": "csv"},
        timeout=120,
    )
    assert skipped.returncode == 0, skipped.stderr
    assert read_counts(tmp_path / "skip") == expected and "1 malformed skipped" in skipped.stderr
