"""Carrying out the scheduler's instructions, and the end of a job.

`Assign` sends a TASK (journalled first: after a restart no attempt number is handed out twice),
`Abandon` a CANCEL; `PublishTask` and `CommitJob` go to the committer (its own thread; the
outcomes come back through outcomes.py); `FailJob` ends the job with its task's failure;
`ReplanTask` is journalled and logged. An instruction that raises fails its own job with one
paragraph, and the others are still carried out. `end_job` records how a job ended (its counters
and progress, the journal's summary) and hands its files to the committer to clean up.
"""

from __future__ import annotations

import logging
import time

from .. import protocol
from ..election import LeadershipLost
from ..errors import MapReduceError
from ..logformat import about
from ..scheduler import Abandon, Assign, CommitJob, FailJob, PublishTask, ReplanTask
from . import jobs
from .jobs import JobRecord, JobStatus, task_header
from .state import CoordinatorState

log = logging.getLogger("mapreduce.coordinator")


class Executor:
    def __init__(self, state: CoordinatorState):
        self.state = state

    def carry_out(self, instructions: list) -> None:
        """Carry out the scheduler's instructions in order. One that raises (a bug, an odd
        filesystem) fails its own job with a paragraph; the others are still carried out."""
        pending = list(instructions)
        self.state.changes += bool(pending)
        while pending:
            instruction = pending.pop(0)
            try:
                pending.extend(self._carry_out_one(instruction))
            except LeadershipLost:
                raise
            except Exception as exc:
                pending.extend(self._instruction_failed(instruction, exc))

    def _instruction_failed(self, instruction, exc: Exception) -> list:
        task = getattr(instruction, "task", None)
        fields = about(
            getattr(instruction, "job", None),
            getattr(task, "id", task),
            getattr(instruction, "attempt", None),
            getattr(instruction, "worker", None),
        )
        log.exception(
            "could not carry out %s (job %s, task %s, attempt %s, worker %s)",
            type(instruction).__name__,
            *fields.values(),
            extra=fields,
        )
        record = self.state.jobs.get(str(getattr(instruction, "job", "")))
        if record is None or not record.running:
            return []
        out = self.state.scheduler.fail_job(record.id)
        self.end_job(
            record,
            JobStatus.FAILED,
            MapReduceError(
                f"job {record.id} failed: the coordinator could not carry out a step of it "
                f"({type(instruction).__name__}): {type(exc).__name__}: {exc}. No output was "
                f"committed; the coordinator's log has the details."
            ),
        )
        return out

    def _carry_out_one(self, instruction) -> list:
        if isinstance(instruction, Assign):
            return self._assign(instruction)
        if isinstance(instruction, Abandon):
            self.state.outbox.send_to_worker(
                instruction.worker,
                protocol.CANCEL,
                {"job": instruction.job, "task": instruction.task, "attempt": instruction.attempt},
            )
            return []
        if isinstance(instruction, PublishTask):
            self.state.committer.publish(
                self.state.jobs[instruction.job], instruction.task, instruction.attempt
            )
            return []
        if isinstance(instruction, CommitJob):
            record = self.state.jobs[instruction.job]
            self.state.journal_record({"type": "committing", "job": record.id})
            self.state.sync_journal()
            self.state.committer.commit(
                record, self.state.scheduler.jobs[record.id].pieces_by_part()
            )
            return []
        if isinstance(instruction, FailJob):
            self._fail(self.state.jobs[instruction.job], instruction.task)
            return []
        if isinstance(instruction, ReplanTask):
            # Before the pieces' TASKs go out (their Assigns follow): a restart cuts the task
            # again into the same pieces (Scheduler.restore_job), which later records are about.
            self.state.journal_record(
                {"type": "replanned", "job": instruction.job, "task": instruction.task.id}
            )
            last = instruction.task.attempts[-1] if instruction.task.attempts else None
            log.info(
                "%s %s lost %d attempt(s) (the last: attempt %s on %s: %s); re-planned into %d "
                "smaller tasks: %s",
                instruction.job,
                instruction.task.id,
                instruction.task.losses,
                last and last.number,
                last and last.worker,
                (instruction.task.last_error or {}).get("message"),
                len(instruction.pieces),
                ", ".join(f"{piece.id} ({piece.where})" for piece in instruction.pieces),
                extra=about(
                    instruction.job, instruction.task.id, last and last.number, last and last.worker
                ),
            )
            return []
        raise TypeError(f"unknown instruction {instruction!r}")

    def _assign(self, assign: Assign) -> list:
        """Send the TASK. One that cannot leave (the worker's connection is down for a moment) is
        as good as lost on the way: the worker's next reports show it missing and it is sent
        again; a worker that stays away is declared dead when its liveness runs out."""
        record = self.state.jobs[assign.job]
        task = assign.task
        # Only a reduce reads the map outputs: a map's TASK does not look at every map task.
        map_results = (
            [m.result for m in self.state.scheduler.jobs[record.id].map_tasks]
            if task.kind == "reduce"
            else []
        )
        header = task_header(
            record,
            task.kind,
            task.index,
            task.id,
            assign.attempt,
            map_results,
            split=task.split,
            skip=task.skip,
        )
        header["seq"] = assign.seq
        self.state.outbox.task_numbered(assign.worker, assign.seq)
        key = (record.id, task.id, assign.attempt)
        again = key in self.state.started
        if not again:
            # Before the TASK goes out: after a restart, no attempt number is handed out twice.
            self.state.journal_record(
                {
                    "type": "assigned",
                    "job": record.id,
                    "task": task.id,
                    "attempt": assign.attempt,
                    "worker": assign.worker,
                }
            )
            if self.state.journal is not None:
                self.state.journal.write_through()  # with the records before it, in one write
        sent = self.state.outbox.send_to_worker(
            assign.worker, protocol.TASK, header, (record.submission.job_code,)
        )
        self.state.started.setdefault(key, time.monotonic())
        if sent and not again and not log.isEnabledFor(logging.INFO):
            return []  # the usual case, with nothing to log at this level
        fields = about(record.id, task.id, assign.attempt, assign.worker)
        if again:
            log.warning(
                "%s %s attempt %s sent again to %s (its TASK was lost on the way)",
                record.id,
                task.id,
                assign.attempt,
                assign.worker,
                extra=fields,
            )
        else:
            log.info(
                "%s %s attempt %s assigned to %s",
                record.id,
                task.id,
                assign.attempt,
                assign.worker,
                extra=fields,
            )
        if not sent:
            log.info(
                "%s %s attempt %s: the TASK could not leave for %s yet; it is sent again later",
                record.id,
                task.id,
                assign.attempt,
                assign.worker,
                extra=fields,
            )
        return []

    # ---- a job's end ----------------------------------------------------------------------------

    def _fail(self, record: JobRecord, task) -> None:
        self.end_job(record, JobStatus.FAILED, jobs.task_failure(record, task))

    def end_job(self, record: JobRecord, status: JobStatus, error: MapReduceError | None) -> None:
        now = time.monotonic()
        record.counters = jobs.job_counters(self.state.scheduler, record)
        record.final_progress = jobs.progress(self.state.scheduler, record, now)
        record.status, record.error, record.finished = status, error, now
        record.final_progress["elapsed"] = now - record.submitted
        record.finished_at = time.time()
        self.state.journal_record(jobs.summary(record))
        self.state.sync_journal()  # ended before its files go: a restart does not resume it
        self.state.committer.clean_up(record, keep_output=status is JobStatus.SUCCEEDED)
        self.state.started = {
            key: when for key, when in self.state.started.items() if key[0] != record.id
        }
        if self.state.monitor is not None:
            self.state.monitor.job_ended(self.state, record)
        log.info(
            "%s %s in %.2f s",
            record.id,
            status.value,
            now - record.submitted,
            extra=about(record.id),
        )

    def forget_old_jobs(self) -> None:
        """A long-lived coordinator keeps the summaries of the last finished jobs, not their tasks."""
        finished = [r for r in self.state.jobs.values() if r.over]
        for record in finished:
            self.state.scheduler.forget_job(record.id)
        for record in finished[: max(0, len(finished) - self.state.finished_jobs_kept)]:
            del self.state.jobs[record.id]
