"""`mapreduce run --inline`: the whole job in this one process, for debugging.

No ZeroMQ and no worker processes, so `breakpoint()`, pdb and print debugging work in the job's
code. It is not a second engine: the tasks run through the same code as on workers
(`mapreduce.worker.attempt.run_task`, given the same task headers the coordinator builds), and the
output is committed by the same protocol, so the result is byte-identical to a normal run with the
same --workers/--reducers. There are no retries: the first failure stops the job.
"""

from __future__ import annotations

import secrets
import time

from . import commit, counters, leftovers, storage
from .coordinator import JobRecord, JobSubmission, make_work_dir, remove_work_dir, task_header
from .errors import TaskFailedError
from .jobspec import Job
from .output import finish_parts
from .progress import ProgressReporter
from .worker.attempt import run_task
from .worker.failures import TaskError


def run_inline(
    job: Job,
    submission: JobSubmission,
    progress: ProgressReporter,
    started: float,
    work_dir: str | None = None,
):
    job_id = f"inline-{secrets.token_hex(3)}"
    staging = commit.staging_dir_for(submission.output_dir, job_id)
    if work_dir is None:
        work = leftovers.owned_temp_dir("mapreduce-inline-")
    else:
        work = storage.join(work_dir, job_id)
        make_work_dir(work)
    record = JobRecord(job_id, submission, staging, work, time.monotonic())
    commit.create_staging(staging)
    reports: list = []
    try:
        phases = [("map", len(submission.splits))]
        if submission.num_reducers:
            phases.append(("reduce", submission.num_reducers))
        map_results: list = []
        for kind, count in phases:
            for index in range(count):
                task_id = f"{kind}-{index:05d}"
                header = task_header(record, kind, index, task_id, 1, map_results)
                try:
                    report = run_task(job, header)
                except TaskError as failure:
                    where = (
                        submission.split_descriptions[index]
                        if kind == "map"
                        else f"partition {index}"
                    )
                    raise TaskFailedError(
                        kind,
                        index,
                        where,
                        1,
                        failure.report.get("message", ""),
                        failure.report.get("traceback", ""),
                    ) from None
                if kind == "map":
                    map_results.append(report)
                if kind == "reduce" or not submission.num_reducers:
                    commit.publish_attempt(staging, task_id, 1)
                reports.append(report)
        finish_parts(staging, submission.output_format)
        commit.commit_job(staging, submission.output_dir, submission.overwrite)
    except BaseException:
        commit.abort_job(staging)
        raise
    finally:
        remove_work_dir(work)
    totals = counters.job_totals(reports)
    maps, reduces = len(submission.splits), submission.num_reducers
    snapshot = {
        "maps_done": maps,
        "maps": maps,
        "reduces_done": reduces,
        "reduces": reduces,
        "attempts": maps + reduces,
        "failed": 0,
        "lost": 0,
        "backups": 0,
        "workers": 0,
        "elapsed": time.monotonic() - started,
    }
    progress.summary(snapshot, totals, submission.output_dir)
    return totals, snapshot
