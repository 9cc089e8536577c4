"""`mapreduce run --inline`: the whole job in this one process, for debugging.

No ZeroMQ and no worker processes, so `breakpoint()`, pdb and print debugging work in the job's
code. It is not a second engine: the same `Scheduler` drives the job's lifecycle, with one
in-process "worker" that runs each attempt at once through the same code as on workers
(`mapreduce.worker.attempt.run_task`, given the same task headers), and the same `Committer`
(without its thread) publishes and commits, so the result is byte-identical to a normal run with
the same --workers/--reducers. There are no retries: the first failure stops the job.
"""

from __future__ import annotations

import secrets
import time

from . import counters, defaults, leftovers, storage
from .coordinator.committer import CommitFailed, Committed, Committer, Published, PublishFailed
from .coordinator.jobs import (
    JobRecord,
    create_job_dirs,
    make_work_dir,
    remove_work_dir,
    task_failure,
    task_header,
)
from .coordinator.submission import JobSubmission
from .errors import MapReduceError
from .jobspec import Job
from .progress import ProgressReporter
from .scheduler import Abandon, Assign, CommitJob, FailJob, PublishTask, Scheduler
from .tasks import TaskState
from .worker.attempt import run_task
from .worker.failures import TaskError

WORKER = "inline"


def run_inline(
    job: Job,
    submission: JobSubmission,
    progress: ProgressReporter,
    started: float,
    work_dir: str | None = None,
):
    job_id = f"inline-{secrets.token_hex(3)}"
    if work_dir is None:
        work = leftovers.owned_temp_dir("mapreduce-inline-")
    else:
        work = storage.join(work_dir, job_id)
        make_work_dir(work)
    try:
        staging, shuffle_dir = create_job_dirs(job_id, submission, work)
        record = JobRecord(job_id, submission, staging, shuffle_dir, time.monotonic())
        committer = Committer(background=False)
        try:
            totals = _drive(job, record, committer)
        finally:
            committer.clean_up(record, keep_output=False)  # staging is gone once committed
            committer.close()
    finally:
        remove_work_dir(work)
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


def _drive(job: Job, record: JobRecord, committer: Committer) -> dict:
    """Feed the scheduler until the job is committed; raises the job's error otherwise."""
    submission = record.submission
    scheduler = Scheduler()
    pending = scheduler.add_job(
        record.id,
        submission.split_descriptions,
        submission.num_reducers,
        # No retries, except that --skip-bad-records retries a record once to see it fail again.
        max_attempts=defaults.SKIP_AFTER_FAILURES if submission.skip_bad_records else 1,
        max_losses=1,
        now=time.monotonic(),
        **submission.skipping(),
    )
    pending += scheduler.worker_ready(WORKER, 1, time.monotonic())
    while pending:
        instruction = pending.pop(0)
        now = time.monotonic()
        if isinstance(instruction, Assign):
            pending += _run_attempt(job, record, scheduler, instruction)
        elif isinstance(instruction, PublishTask):
            committer.publish(record, instruction.task, instruction.attempt)
            for outcome in committer.outcomes():
                if isinstance(outcome, Published):
                    pending += scheduler.task_published(outcome.job, outcome.task, now)
                elif isinstance(outcome, PublishFailed):
                    pending += scheduler.publish_failed(
                        outcome.job, outcome.task, outcome.error, now
                    )
        elif isinstance(instruction, CommitJob):
            committer.commit(record)
            for outcome in committer.outcomes():
                if isinstance(outcome, CommitFailed):
                    raise outcome.error
                if isinstance(outcome, Committed):
                    scheduler.job_committed(record.id)
        elif isinstance(instruction, FailJob):
            raise task_failure(record, instruction.task)
        elif not isinstance(instruction, Abandon):  # nothing runs beside the one attempt
            raise TypeError(f"unknown instruction {instruction!r}")
    if not scheduler.job_finished(record.id):
        raise MapReduceError(f"job {record.id} stopped before it was committed (a bug)")
    state = scheduler.jobs[record.id]
    return counters.job_totals(
        task.result for task in state.all_tasks() if task.state is TaskState.SUCCEEDED
    )


def _run_attempt(job: Job, record: JobRecord, scheduler: Scheduler, assign: Assign) -> list:
    task = assign.task
    state = scheduler.jobs[record.id]
    map_results = [m.result for m in state.map_tasks]
    header = task_header(
        record, task.kind, task.index, task.id, assign.attempt, map_results, skip=task.skip
    )
    try:
        report = run_task(job, header)
    except TaskError as failure:
        return scheduler.attempt_failed(
            WORKER, record.id, task.id, assign.attempt, failure.report, False, time.monotonic()
        )
    return scheduler.attempt_succeeded(
        WORKER, record.id, task.id, assign.attempt, report, time.monotonic()
    )
