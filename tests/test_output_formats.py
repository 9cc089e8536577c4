"""--output-format jsonl and parquet: typed, readable by pyarrow, same records as text."""

from __future__ import annotations

import json
import os

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import FAST, JOBS, ROOT, reference_lines, run_cli, small_splits, wordcount_reference
from mapreduce.inputs.discover import expand_inputs
from mapreduce.output import format_field


def jsonl_records(out):
    return [
        json.loads(line)
        for part in sorted(out.glob("part-*.jsonl"))
        for line in part.read_text(encoding="utf-8").splitlines()
    ]


def parquet_records(out):
    return [
        row
        for part in sorted(out.glob("part-*.parquet"))
        for row in pq.read_table(part).to_pylist()
    ]


@pytest.mark.parametrize("job", ["wordcount.py", "wordcount_arrow.py"])
@pytest.mark.parametrize("fmt, reader", [("jsonl", jsonl_records), ("parquet", parquet_records)])
def test_wordcount_in_each_format_matches_the_reference(corpus, tmp_path, job, fmt, reader):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs" / job,
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        3,
        *small_splits("3KB"),
        "--output-format",
        fmt,
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS"] + [
        f"part-{i:05d}.{fmt}" for i in range(3)
    ]
    records = reader(out)
    assert {r["key"]: r["value"] for r in records} == wordcount_reference(corpus)
    assert all(type(r["value"]) is int for r in records)


def test_parquet_keeps_nested_types_and_falls_back_to_json_for_mixed_columns(corpus, tmp_path):
    out = tmp_path / "bigrams"
    result = run_cli(
        "run",
        ROOT / "jobs/bigrams.py",
        tmp_path / "corpus",
        "-o",
        out,
        "-w",
        2,
        "-r",
        1,
        "--output-format",
        "parquet",
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out / "part-00000.parquet")
    assert str(table.schema.field("key").type) == "list<element: string>"
    assert all(len(row["key"]) == 2 for row in table.to_pylist())
    mixed = tmp_path / "mixed"
    result = run_cli(
        "run",
        ROOT / "tests/jobs/typed_keys.py",
        tmp_path / "corpus",
        "-o",
        mixed,
        "-w",
        2,
        "-r",
        1,
        "--output-format",
        "parquet",
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    table = pq.read_table(mixed / "part-00000.parquet")
    assert (
        str(table.schema.field("key").type) == "string"
        and str(table.schema.field("value").type) == "int64"
    )


# --- the part writers stream: bounded memory, same types as one pa.array over the whole part ---------

from mapreduce import output  # noqa: E402
from mapreduce.shuffle import RunReader  # noqa: E402

COLUMN_CASES = {
    "ints": [1, 2, 3, 4, 5, 6, 7],
    "ints then floats": [1, 2, 3, 4, 2.5, 6, 7],
    "nulls then strings": [None, None, None, None, "a", None, "b"],
    "strings then ints": ["a", "b", "c", "d", 5, "f", "g"],
    "lists widening": [[1], [2], [3], [4], [2.5], [6], [7]],
    "huge int late": [1, 2, 3, 4, 5, 2**70, 7],
    "int beyond 2**53 then a float": [1, 2, 2**60 + 1, 4, 0.5, 6.5, 7],
    "dicts": [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}, {"a": 5}, {"a": 6}, {"a": 7}],
}


@pytest.mark.parametrize("case", COLUMN_CASES)
def test_parquet_part_streams_row_groups_with_the_types_of_the_whole_part(
    tmp_path, monkeypatch, case
):
    monkeypatch.setattr(output, "_SIZE_SAMPLE", 2)  # row groups of 2 rows: types change mid-part
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
    whole, is_json = output._arrow_column(values)  # what gathering the whole part gives
    assert table.column("value").type == whole.type
    assert table.column("value").to_pylist() == whole.to_pylist()
    assert (
        case in ("strings then ints", "huge int late", "int beyond 2**53 then a float")
    ) == is_json
    assert table.column("key").to_pylist() == keys
    assert [p.name for p in tmp_path.iterdir()] == ["part-00000.parquet"]  # no temporary left


def test_parquet_part_of_a_failed_attempt_leaves_nothing_and_an_empty_part_has_its_file(tmp_path):
    failed = output.part_writer(str(tmp_path / "failed"), 0, "parquet")
    failed.write("a", 1)
    failed.close(RuntimeError("the reducer raised"))
    assert list((tmp_path / "failed").iterdir()) == []
    empty = output.part_writer(str(tmp_path / "empty"), 3, "parquet")
    empty.close()
    table = pq.read_table(tmp_path / "empty" / "part-00003.parquet")
    assert table.num_rows == 0 and table.column_names == ["key", "value"]


def test_arrow_parts_between_steps_are_written_in_bounded_files_and_read_back_exactly(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(output, "_SIZE_SAMPLE", 3)
    monkeypatch.setattr(output, "ROW_GROUP_ROWS", 3)
    pairs = [
        (f"k{i}", value)
        for i, value in enumerate([1, 2.5, "x", None, (1, 2), b"b", True, 10, 11, 12])
    ]
    writer = output.part_writer(str(tmp_path), 0, "arrow")
    for key, value in pairs:
        writer.write(key, value)
    writer.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [
        "part-00000-00000.arrow",
        "part-00000-00001.arrow",
        "part-00000-00002.arrow",
        "part-00000-00003.arrow",
    ]
    # The next step reads the files in name order (input discovery sorts), which must be the
    # order they were written in: an order-sensitive reducer sees its values as written.
    read = [pair for name in files for pair in RunReader(str(tmp_path / name)).records()]
    assert read == pairs
    assert [type(v) for _, v in read] == [type(v) for _, v in pairs]
    assert [os.path.basename(f.path) for f in expand_inputs([str(tmp_path)])] == files


def test_a_part_small_enough_for_one_arrow_file_keeps_its_plain_name(tmp_path):
    writer = output.part_writer(str(tmp_path), 7, "arrow")
    writer.write("k", 1)
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["part-00007.arrow"]
    assert list(RunReader(str(tmp_path / "part-00007.arrow")).records()) == [("k", 1)]


# --- a job's Parquet parts read back as one dataset, whatever each part inferred ----------------------


def dataset_readers():
    """Every way a user reads the output directory as one dataset: pyarrow always; pandas and
    DuckDB when installed (they are not dependencies)."""
    readers = {
        "pyarrow.parquet.read_table": lambda out: pq.read_table(out).to_pylist(),
        "pyarrow.dataset": lambda out: ds.dataset(out).to_table().to_pylist(),
    }
    try:
        import pandas

        readers["pandas"] = lambda out: pandas.read_parquet(out).to_dict("records")
    except ImportError:
        pass
    try:
        import duckdb

        readers["duckdb"] = lambda out: [
            dict(zip(("key", "value"), row))
            for row in duckdb.sql(
                f"select key, value from read_parquet('{out}/*.parquet')"
            ).fetchall()
        ]
    except ImportError:
        pass
    return readers


def test_map_only_parquet_with_empty_parts_reads_as_one_dataset(tmp_path):
    # grep over small splits: most map tasks find nothing and write empty parts.
    sample = ROOT / "datasets" / "sample"
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/grep.py",
        sample,
        "--param",
        "pattern=canoe",
        *small_splits("4K"),
        "--output-format",
        "parquet",
        "-o",
        out,
        "-w",
        2,
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    parts = sorted(out.glob("part-*.parquet"))
    assert sum(pq.ParquetFile(part).metadata.num_rows == 0 for part in parts) >= 2
    expected = sorted(
        (str(path), line)
        for path in sorted(sample.iterdir())
        for line in reference_lines(path)
        if "canoe" in line
    )
    assert expected
    for name, read in dataset_readers().items():
        rows = read(out)
        assert sorted((row["key"], row["value"]) for row in rows) == expected, name
    assert pq.read_table(out).schema.field("value").type == "string"


def test_parquet_output_where_every_part_is_empty_reads_as_an_empty_dataset(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run",
        ROOT / "jobs/grep.py",
        ROOT / "datasets" / "sample",
        "--param",
        "pattern=no such text anywhere",
        *small_splits("4K"),
        "--output-format",
        "parquet",
        "-o",
        out,
        "-w",
        2,
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    for name, read in dataset_readers().items():
        assert read(out) == [], name


# part -> its values: parts infer int, float, null; one widens in a later row group (the first
# group holds 1000 rows); one part is empty.
NUMERIC_PARTS = {0: [1, 2, 3], 1: [0.5, 1.5], 2: [*range(1500), 2.25, 7], 3: [None, None]}
# ... and with a str part and a part mixing str and int (stored as JSON text): no common type.
MIXED_PARTS = {0: [1, 2, 3], 1: ["a", "b"], 2: ["c", 4, "d"], 3: [None]}


@pytest.mark.parametrize(
    "parts, reducers, value_type",
    [(NUMERIC_PARTS, 5, "double"), (MIXED_PARTS, 5, "json")],
    ids=["numeric", "mixed"],
)
def test_parts_that_infer_different_types_read_as_one_dataset(
    tmp_path, parts, reducers, value_type
):
    records = [{"part": part, "value": value} for part, values in parts.items() for value in values]
    data = tmp_path / "data"
    data.mkdir()
    for index in range(0, len(records), 400):  # several map tasks
        with open(data / f"in-{index:05d}.jsonl", "w") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in records[index : index + 400])
    out = tmp_path / "out"
    result = run_cli(
        "run",
        JOBS / "typed_by_partition.py",
        data,
        "-o",
        out,
        "-w",
        2,
        "-r",
        reducers,
        "--output-format",
        "parquet",
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    empty = [
        part
        for part in sorted(out.glob("part-*.parquet"))
        if pq.ParquetFile(part).metadata.num_rows == 0
    ]
    assert len(empty) == reducers - len(parts)
    schema = pq.read_table(out).schema
    assert schema.field("key").type == "int64"
    if value_type == "json":
        assert schema.field("value").type == "string"
        assert schema.field("value").metadata == {b"encoding": b"json"}
    else:
        assert schema.field("value").type == value_type
    expected = sorted(((record["part"], record["value"]) for record in records), key=repr)
    for name, read in dataset_readers().items():
        rows = read(out)
        values = [
            json.loads(row["value"]) if value_type == "json" else row["value"] for row in rows
        ]
        got = sorted(zip((row["key"] for row in rows), values), key=repr)
        assert [key for key, _ in got] == [key for key, _ in expected], name
        assert got == expected, name  # 1 == 1.0: the ints read back as floats
    for part in out.glob("part-*.parquet"):  # every part in the one schema, so any reader works
        assert pq.read_schema(part).equals(schema, check_metadata=True), part.name


# part -> values, as independent tasks write them; the job's column is what one part would hold.
PART_CASES = {
    "empty parts": [["a", "b"], [], ["c"], []],
    "all empty": [[], []],
    "int, float, null parts": [[1, 2], [0.5], [None], []],
    "str part and JSON text part": [["a"], ["b", 3], []],
    "int beyond 2**53 and a float": [[2**60 + 1, 2], [0.5], []],
    "lists widening": [[[1], [2]], [[2.5]], []],
    "bytes": [[b"x"], [], [b"y"]],
}


@pytest.mark.parametrize("case", PART_CASES)
def test_unified_parts_hold_the_types_one_part_would(tmp_path, case):
    parts = PART_CASES[case]
    for index, values in enumerate(parts):
        writer = output.part_writer(str(tmp_path), index, "parquet")
        for value in values:
            writer.write(f"k{index}", value)
        writer.close()
    output.finish_parts(str(tmp_path), "parquet")
    every = [value for values in parts for value in values]
    whole, is_json = output._arrow_column(every)  # all of the job's values in one part
    table = pq.read_table(tmp_path)
    assert table.column("value").type == (whole.type if every else "null")
    assert (table.schema.field("value").metadata == {b"encoding": b"json"}) == is_json
    assert sorted(table.column("value").to_pylist(), key=repr) == sorted(
        whole.to_pylist(), key=repr
    )
    assert table.column("key").to_pylist() == [
        f"k{i}" for i, values in enumerate(parts) for _ in values
    ]
    schemas = [pq.read_schema(part) for part in sorted(tmp_path.iterdir())]
    assert len(schemas) == len(parts)  # no temporary left behind
    assert all(schema.equals(schemas[0], check_metadata=True) for schema in schemas)


_FIELD_ITEMS = st.one_of(
    st.text(), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False)
)


@given(st.one_of(st.tuples(st.text(), st.text()), st.lists(_FIELD_ITEMS).map(tuple)))
def test_text_fields_of_tuples_are_what_json_dumps_gives(key):
    """A tuple key of the text format is written as JSON (an array), by format_field's own quick
    path when every item is a str: the same text json.dumps gives, escapes included."""
    expected = json.dumps(key, ensure_ascii=False)
    assert format_field(key) == expected
    assert json.loads(format_field(key)) == json.loads(expected)
