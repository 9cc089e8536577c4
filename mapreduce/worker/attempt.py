"""Running one task attempt: the user's map or reduce code between the framework's readers and writers.

`run_task(job, header)` is the one entry, used by a worker's executor process and by
`mapreduce run --inline`. It reads only what the task message names, writes only under the
attempt's own directory, and returns a small JSON-able report; the coordinator decides whether
the attempt commits. So re-executing an attempt, or running two at once, is always safe.
"""

from __future__ import annotations

from mapreduce import counters
from mapreduce.jobspec import Job
from mapreduce.worker.failures import TaskError, failure_report
from mapreduce.worker.map_task import run_map
from mapreduce.worker.reduce_task import run_reduce


def run_task(job: Job, task: dict) -> dict:
    """Run one attempt and return its report; raises TaskError with the user-facing cause."""
    counters.reset()
    try:
        report = run_map(job, task) if task["kind"] == "map" else run_reduce(job, task)
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(failure_report(exc, job)) from None
    report["user_counters"] = counters.take()
    return report
