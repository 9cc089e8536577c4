"""The committer's outcomes, fed back to the scheduler as events.

The committer (committer.py) publishes attempts' outputs and commits and cleans up jobs on its
own thread; what came of each step is read here, once per iteration of the loop: a published
output is journalled and lets its task succeed, a failed publish runs the task again, a commit
ends its job (succeeded or failed), a clean-up settles the job's record (old ones are forgotten).
"""

from __future__ import annotations

import time

from .. import interrupts
from .committer import CleanedUp, CommitFailed, Committed, Published, PublishFailed
from .executor import Executor
from .jobs import JobStatus
from .state import CoordinatorState


class Outcomes:
    def __init__(self, state: CoordinatorState, executor: Executor):
        self.state = state
        self.executor = executor

    def take(self) -> None:
        state, carry_out = self.state, self.executor.carry_out
        scheduler = state.scheduler
        for outcome in state.committer.outcomes():
            now = time.monotonic()
            state.changes += 1
            if isinstance(outcome, Published):
                self._journal_published(outcome)
                carry_out(scheduler.task_published(outcome.job, outcome.task, now))
            elif isinstance(outcome, PublishFailed):
                carry_out(scheduler.publish_failed(outcome.job, outcome.task, outcome.error, now))
            elif isinstance(outcome, Committed):
                # Held over the record's update: whoever catches SIGINT or SIGTERM afterwards
                # finds the job either committed or not, never in between.
                with interrupts.held():
                    scheduler.job_committed(outcome.job)
                    self.executor.end_job(state.jobs[outcome.job], JobStatus.SUCCEEDED, None)
            elif isinstance(outcome, CommitFailed):
                carry_out(scheduler.fail_job(outcome.job))
                self.executor.end_job(state.jobs[outcome.job], JobStatus.FAILED, outcome.error)
            elif isinstance(outcome, CleanedUp) and outcome.job in state.jobs:
                state.journal_record({"type": "cleaned", "job": outcome.job})
                state.jobs[outcome.job].settled = True
                self.executor.forget_old_jobs()

    def _journal_published(self, outcome: Published) -> None:
        if self.state.journal is None:
            return
        job = self.state.scheduler.jobs.get(outcome.job)
        task = job.task(outcome.task) if job else None
        if task is not None:
            self.state.journal_record(
                {
                    "type": "published",
                    "job": outcome.job,
                    "task": outcome.task,
                    "attempt": outcome.attempt,
                    "result": task.result,
                }
            )
            # Not synced: lost with a power cut, the task runs again (tasks are idempotent).
