"""Running one task attempt: the user's map or reduce code between the framework's readers and writers.

`run_task(job, header)` is the one entry, used by a worker's executor process and by
`mapreduce run --inline`. It reads only what the task message names, writes only under the
attempt's own directory, and returns a small JSON-able report; the coordinator decides whether
the attempt commits. So re-executing an attempt, or running two at once, is always safe.
"""

from __future__ import annotations

from mapreduce import counters, sidefiles, storage
from mapreduce.jobspec import Job
from mapreduce.worker.failures import TaskError, failure_report
from mapreduce.worker.map_task import run_map
from mapreduce.worker.reduce_task import run_reduce


def run_task(job: Job, task: dict) -> dict:
    """Run one attempt and return its report; raises TaskError with the user-facing cause."""
    counters.reset()
    try:
        if job.side_files:
            report = _in_working_directory(job, task)
        else:
            report = run_map(job, task) if task["kind"] == "map" else run_reduce(job, task)
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(failure_report(exc, job)) from None
    report["user_counters"] = counters.take()
    return report


def _in_working_directory(job: Job, task: dict) -> dict:
    """The attempt run in the job's working directory, where its side files are (fetched now if
    the job was not loaded from its shipped bytes, as with --inline). The task's paths are made
    absolute first: they may be relative to the directory the job was run from."""
    workdir = job.workdir or sidefiles.prepare(job.side_files)
    task = absolute_paths(task)
    with sidefiles.working_directory(job.side_files, workdir):
        return run_map(job, task) if task["kind"] == "map" else run_reduce(job, task)


def absolute_paths(task: dict) -> dict:
    """The task header with its local paths (split, inputs, output directory) made absolute."""
    task = dict(task)
    if "split" in task:
        split = dict(task["split"])
        split["segments"] = [
            [storage.absolute(segment[0]), *segment[1:]] for segment in split["segments"]
        ]
        task["split"] = split
    if "inputs" in task:
        task["inputs"] = [storage.absolute(path) for path in task["inputs"]]
    if "out_dir" in task:
        task["out_dir"] = storage.absolute(task["out_dir"])
    return task
