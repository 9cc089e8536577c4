"""Running one task attempt: the user's map or reduce code between the framework's readers and writers.

This runs in a worker's executor process. It reads only what the task message names, writes only
under the attempt's own directory, and returns a small JSON-able report; the coordinator decides
whether the attempt commits. So re-executing an attempt, or running two at once, is always safe.
"""

from __future__ import annotations

import os
import sys
import traceback

from mapreduce import shuffle
from mapreduce.errors import RecordError
from mapreduce.jobspec import Job
from mapreduce.output import PartWriter
from mapreduce.splits import Split, read_records

_FRAMEWORK_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules["mapreduce"], sys.modules["workers"]))


class TaskError(Exception):
    """An attempt failed; `report` is what goes back to the coordinator."""

    def __init__(self, report: dict):
        super().__init__(report.get("message", ""))
        self.report = report


def run_task(job: Job, task: dict) -> dict:
    """Run one attempt and return its report; raises TaskError with the user-facing cause."""
    try:
        if task["kind"] == "map":
            return run_map(job, task)
        return run_reduce(job, task)
    except TaskError:
        raise
    except shuffle.ShuffleReadError as exc:
        raise TaskError({"type": "ShuffleReadError", "message": f"cannot read map output "
                         f"'{exc.path}': {exc}", "traceback": "", "input": exc.path}) from None
    except RecordError as exc:
        raise TaskError({"type": "RecordError", "message": str(exc), "traceback": user_traceback(exc)}) from None
    except Exception as exc:
        raise TaskError(describe_exception(exc)) from None


def run_map(job: Job, task: dict) -> dict:
    split = Split.from_wire(task["split"])
    records_in = 0
    mapper = job.mapper
    if job.map_only:
        writer = PartWriter(task["out_dir"], task["part"])
        try:
            for key, value in read_records(split, job.input_format):
                records_in += 1
                output = mapper(key, value)
                if output is not None:
                    for pair in output:
                        writer.write(*_as_pair(pair))
        except BaseException as exc:
            writer.close(exc)
            raise
        writer.close()
        return {"counters": {"map_input_records": records_in, "map_output_records": writer.records,
                             "output_records": writer.records}}
    os.makedirs(task["out_dir"], exist_ok=True)
    writer = shuffle.MapOutputWriter(task["out_dir"], task["partitions"], partitioner=job.partitioner,
                                     combiner=job.combiner)
    add_pairs = writer.add_pairs
    for key, value in read_records(split, job.input_format):
        records_in += 1
        output = mapper(key, value)
        if output is not None:
            add_pairs(output)
    result = writer.close()
    return {"files": {str(p): paths for p, paths in result.files.items()},
            "counters": {"map_input_records": records_in, "map_output_records": result.records_in,
                         "shuffle_records": result.records_out, "shuffle_bytes": result.bytes_written}}


def run_reduce(job: Job, task: dict) -> dict:
    writer = PartWriter(task["out_dir"], task["partition"])
    groups = 0
    reducer = job.reducer
    try:
        for key, values in shuffle.iter_partition_groups(task["inputs"]):
            groups += 1
            output = reducer(key, values)
            if output is not None:
                for pair in output:
                    writer.write(*_as_pair(pair, "reducer"))
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()
    return {"counters": {"reduce_input_groups": groups, "output_records": writer.records}}


def _as_pair(pair, who: str = "mapper"):
    if type(pair) is tuple and len(pair) == 2:
        return pair
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        return pair[0], pair[1]
    text = repr(pair)
    text = text if len(text) <= 80 else text[:77] + "..."
    raise RecordError(f"the {who} yielded {text} of type {type(pair).__name__}; it must yield "
                      f"(key, value) pairs")


def _is_user_frame(frame: traceback.FrameSummary) -> bool:
    return not os.path.abspath(frame.filename).startswith(_FRAMEWORK_DIRS)


def user_traceback(exc: BaseException) -> str:
    """The traceback as the user wants it: their own frames only (all frames if none are theirs)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if _is_user_frame(f)]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(mine or frames),
             *traceback.format_exception_only(type(exc), exc)]
    return "".join(lines)


def describe_exception(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}",
            "traceback": user_traceback(exc)}
