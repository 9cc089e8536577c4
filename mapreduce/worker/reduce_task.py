"""A reduce attempt: the partition's sorted runs merged into groups, through the user's reducer
(or, for a job with REDUCE, Arrow's aggregation), into the attempt's part file."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from mapreduce import shuffle, vectorized
from mapreduce.jobspec import Job
from mapreduce.output import PartWriter, part_writer
from mapreduce.pairs import checked_output
from mapreduce.reducers import identity_reducer
from mapreduce.worker import skipping
from mapreduce.worker.access import make_output_dir
from mapreduce.worker.hooks import call_hook, hook_output


def run_reduce(job: Job, task: dict) -> dict:
    make_output_dir(task["out_dir"])
    writer = part_writer(task["out_dir"], task["partition"], task.get("output_format", "text"))
    if job.aggregation:
        return _reduce_aggregated(job, task, writer)
    if (
        job.reducer is identity_reducer
        and not job.sort_values
        and shuffle.natively_mergeable(task["inputs"])
    ):
        return _reduce_identity(job, task, writer)
    groups = 0
    reducer = job.reducer
    assert reducer is not None, "a reduce task of a job without a reducer"
    skipped: list = []  # keys skipped (--skip-bad-records): their reducer raised twice
    key = reducing = None
    try:
        call_hook(job.reducer_init, "reducer_init", job)
        for key, values in skipping.groups_to_reduce(
            shuffle.iter_partition_groups(task["inputs"], sort_values=job.sort_values),
            skipping.skip_list(task),
            skipped,
        ):
            groups += 1
            reducing = True
            output = reducer(key, values)
            if output is not None:
                writer.write_pairs(checked_output(output, "reducer"), "reducer")
            reducing = False
        if job.reducer_final is not None:
            output = hook_output(job.reducer_final, "reducer_final", job)
            writer.write_pairs(checked_output(output, "reducer_final"), "reducer_final")
    except BaseException as exc:
        writer.close(exc)
        if reducing and isinstance(exc, Exception):
            raise skipping.reduce_failure(exc, job, key) from None
        raise
    writer.close()
    return {
        "counters": {
            "reduce_input_groups": groups,
            "output_records": writer.records,
            "records_skipped": len(skipped),
        },
        "skipped": skipped,
    }


def _reduce_aggregated(job: Job, task: dict, writer: PartWriter) -> dict:
    assert job.aggregation is not None, "an aggregating reduce task of a job without REDUCE"
    try:
        for keys, values in vectorized.reduce_slices(task["inputs"], job.aggregation):
            writer.write_table(keys, values)
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()
    return {"counters": {"output_records": writer.records}}


def _reduce_identity(job: Job, task: dict, writer: PartWriter) -> dict:
    """The framework's identity_reducer over runs Arrow merges natively: the merged slices go to
    the part file as they are, the same records in the same order as calling it per key would
    write (its hooks still run), with no Python per record."""
    groups = 0
    last = None  # the previous slice's last key, as an Arrow scalar
    try:
        call_hook(job.reducer_init, "reducer_init", job)
        for keys, values in shuffle.iter_partition_slices(task["inputs"]):
            groups += _new_keys(keys, last)
            if len(keys):
                last = keys[-1]
            writer.write_table(keys, values)
        if job.reducer_final is not None:
            output = hook_output(job.reducer_final, "reducer_final", job)
            writer.write_pairs(checked_output(output, "reducer_final"), "reducer_final")
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()
    return {
        "counters": {
            "reduce_input_groups": groups,
            "output_records": writer.records,
            "records_skipped": 0,
        },
        "skipped": [],
    }


def _new_keys(keys: pa.Array, last) -> int:
    """How many groups start in this slice of sorted keys, `last` being the key before it."""
    rows = len(keys)
    if not rows:
        return 0
    changes = pc.sum(pc.not_equal(keys.slice(1), keys.slice(0, rows - 1))).as_py() or 0
    return changes + (last is None or not pc.equal(keys[0], last).as_py())
