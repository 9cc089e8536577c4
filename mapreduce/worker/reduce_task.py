"""A reduce attempt: the partition's sorted runs merged into groups, through the user's reducer
(or, for a job with REDUCE, Arrow's aggregation), into the attempt's part file."""

from __future__ import annotations

from mapreduce import shuffle, vectorized
from mapreduce.jobspec import Job
from mapreduce.output import PartWriter, part_writer
from mapreduce.worker.access import make_output_dir


def run_reduce(job: Job, task: dict) -> dict:
    make_output_dir(task["out_dir"])
    writer = part_writer(task["out_dir"], task["partition"], task.get("output_format", "text"))
    if job.aggregation:
        return _reduce_aggregated(job, task, writer)
    groups = 0
    reducer = job.reducer
    assert reducer is not None, "a reduce task of a job without a reducer"
    try:
        for key, values in shuffle.iter_partition_groups(
            task["inputs"], sort_values=job.sort_values
        ):
            groups += 1
            output = reducer(key, values)
            if output is not None:
                writer.write_pairs(output, "reducer")
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()
    return {"counters": {"reduce_input_groups": groups, "output_records": writer.records}}


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
