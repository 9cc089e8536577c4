"""Running a job on a few records inside a unit test: `run_job(job, records)` (mrjob's sandbox).

    from mapreduce.testing import run_job
    import jobs.wordcount as wordcount

    def test_counts_words():
        assert sorted(run_job(wordcount, ["a b", "b"])) == [("a", 1), ("b", 2)]

It is `mapreduce run --inline` underneath: the same scheduler, task code, shuffle and commit, in
this process (so pdb works), on input files made from `records`, with the job's output read back
as the Python values it wrote (an int stays an int, a tuple a tuple).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import types
from typing import Iterable

from .errors import MapReduceError
from .jobspec import apply_params, check_required_params

_SPLITS = 2  # input files, so a test sees at least two map tasks (per-task state shows)


def run_job(
    job: types.ModuleType | str,
    records: Iterable,
    reducers: int = 2,
    *,
    params: dict | None = None,
    maps: int = _SPLITS,
    files: Iterable[str] = (),
    archives: Iterable[str] = (),
    py_files: Iterable[str] = (),
) -> list[tuple]:
    """Run `job` (an imported job module, its file's path or its module name) on `records` and
    return its output as a list of (key, value) tuples: partition by partition, keys in order
    within each (a map-only job: map task by map task, in input order).

    `records` are the input as the job's INPUT_FORMAT reads it: str lines for "lines" (the
    mapper's key is then the path of a temporary input file), JSON-able values for "jsonl",
    dicts for "csv" and "parquet", whole texts for "files". They are spread over `maps` input
    files (so over at least as many map tasks); `reducers` as `--reducers`; `params` as `--param`
    (values as on the command line, converted to the types of the job's PARAMS); `files`,
    `archives`, `py_files` as `--file`, `--archive`, `--py-files`. Raises the same
    MapReduceError as `mapreduce run` when the job fails."""
    from . import local
    from .shuffle import RunReader
    from .steps import load_steps, steps_of_module

    records = list(records)
    if isinstance(job, str):
        steps = load_steps(job, params)
    else:
        ref = getattr(job, "__name__", "job")
        if params:
            apply_params(job, ref, params)
        check_required_params(job, ref)
        steps = steps_of_module(job, ref)
    input_format = steps[0].input_format
    with tempfile.TemporaryDirectory(prefix="mapreduce-testing-") as scratch:
        inputs = os.path.join(scratch, "input")
        os.mkdir(inputs)
        _write_inputs(inputs, input_format, records, max(1, maps))
        # A split size of the biggest file: one map task per input file.
        biggest = max(
            (os.path.getsize(os.path.join(inputs, name)) for name in os.listdir(inputs)),
            default=1,
        )
        output = os.path.join(scratch, "output")
        local.run_job(
            steps,
            [inputs],
            output,
            workers=max(1, maps),
            reducers=reducers,
            split_size=max(1, biggest),
            min_split_size=1,
            inline=True,
            files=list(files),
            archives=list(archives),
            py_files=list(py_files),
            output_format="arrow",
            quiet=True,
        )
        parts = sorted(name for name in os.listdir(output) if name.startswith("part-"))
        return [
            tuple(pair)
            for name in parts
            for pair in RunReader(os.path.join(output, name)).records()
        ]


def _write_inputs(directory: str, input_format: str, records: list, maps: int) -> None:
    chunks = (
        [records[i::maps] for i in range(maps)]
        if input_format != "files"
        else [[record] for record in records]
    )
    for number, chunk in enumerate(chunks):
        if not chunk and number:
            continue
        path = os.path.join(directory, f"records-{number:03d}")
        if input_format == "lines":
            _write_lines(path, chunk)
        elif input_format == "files":
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(chunk[0])
        elif input_format == "jsonl":
            _write_lines(path, [json.dumps(record) for record in chunk])
        elif input_format == "csv":
            _write_csv(path, chunk)
        elif input_format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(chunk), path)
        else:
            raise MapReduceError(
                f"run_job cannot make {input_format!r} input; give a job that reads lines, "
                f"files, jsonl, csv or parquet."
            )


def _write_lines(path: str, lines: list) -> None:
    for line in lines:
        if not isinstance(line, str) or "\n" in line:
            raise MapReduceError(
                f"run_job: a line record must be a str without a line break, not {line!r}."
            )
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def _write_csv(path: str, rows: list) -> None:
    if not rows:
        open(path, "w").close()
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
