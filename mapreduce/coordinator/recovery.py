"""The journal's replay at start-up, and its compaction.

A coordinator started over a journal (journal.py) takes up where the last one stopped: finished
jobs become history (their files cleaned up if that was not done), running ones continue (their
published outputs kept, the attempts that were running run again), a job whose staging vanished
meanwhile fails with one paragraph. The journal is then rewritten compacted, as it is again
whenever it has grown enough (`compact`).
"""

from __future__ import annotations

import logging
import time

from ..errors import MapReduceError
from . import jobs
from . import journal as journal_records
from .executor import Executor
from .jobs import JobRecord, JobStatus
from .journal import Journal
from .outcomes import Outcomes
from .state import CoordinatorState

log = logging.getLogger("mapreduce.coordinator")


def recover(
    state: CoordinatorState, executor: Executor, outcomes: Outcomes, journal: Journal
) -> None:
    """Replay the journal: finished jobs become history, running ones continue where they
    were (published outputs are kept, attempts that were running run again). Then the
    journal is rewritten compacted, without the damaged tail it may have had."""
    started = time.monotonic()
    records, damage = journal.read()
    if damage is not None:
        log.warning("journal: %s; replayed the %d records before it", damage, len(records))
    histories = journal_records.fold(records)
    now, wall = time.monotonic(), time.time()
    instructions: list = []
    lost: list[JobRecord] = []
    for history in histories.values():
        if history.ended is not None:
            record = jobs.from_summary(history.ended, now, wall)
            record.settled = history.cleaned
            state.jobs[record.id] = record
            if not history.cleaned and record.staging and record.shuffle_dir:
                # It ended just before the restart: its files may still be there.
                state.committer.clean_up(record, record.status is JobStatus.SUCCEEDED)
            else:
                record.settled = True
            continue
        if history.submitted is None:
            continue
        record = jobs.from_submitted(history.submitted, now, wall)
        state.jobs[record.id] = record
        vanished = jobs.reclaim_job_dirs(record)
        submission = record.submission
        instructions += state.scheduler.restore_job(
            record.id,
            submission.split_descriptions,
            submission.num_reducers,
            submission.max_attempts,
            submission.max_losses,
            history.attempts,
            {task: result for task, (_, result) in history.published.items()},
            now,
            map_splits=submission.splits,
            cut=submission.cut,
            replanned=history.replanned,
            **submission.skipping(),
        )
        if vanished and not history.committing:
            lost.append(record)
    journal.rewrite(journal_records.compacted(histories, state.finished_jobs_kept))
    state.committer.drain()  # jobs that ended just before the restart: cleaned up by now
    outcomes.take()
    for record in lost:
        instructions += state.scheduler.fail_job(record.id)
        executor.end_job(
            record,
            JobStatus.FAILED,
            MapReduceError(
                f"job {record.id} failed: its staging directory '{record.staging}' "
                f"vanished while the coordinator was down, so the work done so far is "
                f"lost. No output was committed; submit the job again."
            ),
        )
    running = sum(r.running for r in state.jobs.values())
    if state.jobs:
        log.warning(
            "journal: resumed %d running job(s) and %d finished, from %d records in %.2f s",
            running,
            len(state.jobs) - running,
            len(records),
            time.monotonic() - started,
        )
    executor.carry_out(instructions)


def compact(journal: Journal, finished_jobs_kept: int) -> None:
    """Rewrite the journal as the running jobs stand and the last finished ones, so that it
    does not grow without end on a coordinator that runs for months."""
    records, _ = journal.read()
    journal.rewrite(journal_records.compacted(journal_records.fold(records), finished_jobs_kept))
