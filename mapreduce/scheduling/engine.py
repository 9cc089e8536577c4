"""A job's own decisions: what each outcome of its attempts does to the job.

The `JobEngine` takes the events about one job's tasks, once the `Scheduler` has found the job
and task they are about, and decides: an attempt that failed or was lost runs again, fails the
job, skips a bad record or has its task re-planned into smaller tasks; an accepted attempt is
published and its rivals abandoned; a phase whose tasks all succeeded gives way to the next (or
to the commit); a job that fails or is cancelled stops its attempts. It changes the `JobState`
and returns instructions; the slots of the attempts it abandons are the Scheduler's to free (an
`Abandon` says which). Backup-task choice is in backups.py. No I/O; time is passed in.
"""

from __future__ import annotations

from .. import defaults
from ..tasks import AttemptState, JobPhase, Task, TaskState
from . import backups
from .instructions import Abandon, CommitJob, FailJob, PublishTask, ReplanTask
from .jobstate import JobState
from .settings import SchedulerSettings


class JobEngine:
    def __init__(self, settings: SchedulerSettings):
        self.settings = settings

    # ---- a job's start ----------------------------------------------------------------------

    def restore(
        self,
        job: JobState,
        attempts: dict[str, int],
        published: dict[str, dict],
        replanned: list | tuple,
        now: float,
    ) -> list:
        """A job replayed from a journal (Scheduler.restore_job): its re-planned tasks cut
        again, each task's attempts and published result as they were, its finished phases
        ended."""
        for task_id in replanned:
            task = job.task(task_id)
            if task is not None:
                self.replan(job, task)  # already journalled: its ReplanTask is not repeated
        for task in job.all_tasks():
            task.restore(attempts.get(task.id, 0), now, published.get(task.id))
        job.reindex()
        out: list = []
        while job.active and job.phase_done():
            out += self.finish_phase(job)
        return out

    # ---- attempts' outcomes -----------------------------------------------------------------

    def attempt_succeeded(
        self, job: JobState, task: Task, number: int, result: dict, now: float
    ) -> list | None:
        """The attempt is accepted: its output is to be published, its rivals abandoned. None
        for a late or duplicate report (the task already committed, the attempt was abandoned or
        its worker declared dead), which is discarded: exactly one attempt commits."""
        attempt = task.attempt(number)
        if (
            attempt is None
            or attempt.state is not AttemptState.RUNNING
            or task.state is not TaskState.RUNNING
        ):
            return None
        attempt.move_to(AttemptState.SUCCEEDED)
        job.move(task, TaskState.PUBLISHING)
        job.set_result(task, result)
        job.note_duration(task, now - attempt.started)
        if job.skip_bad_records and job.skipped() > job.max_skipped:
            task.last_error = self._too_many_skipped(job, "malformed records")
            return self.fail(job, task)
        out: list = [PublishTask(job.id, task, number)]
        for other in task.running():
            other.move_to(AttemptState.KILLED)
            out.append(Abandon(other.worker, job.id, task.id, other.number))
        return out

    def task_published(self, job: JobState, task: Task) -> list:
        """The accepted attempt's output is in place; the phase ends when every task's is."""
        if task.state is not TaskState.PUBLISHING:
            return []
        job.move(task, TaskState.SUCCEEDED)
        return self.finish_phase(job) if job.phase_done() else []

    def publish_failed(self, job: JobState, task: Task, error: dict) -> list:
        """The accepted attempt's output could not be put in place: the task runs again (a
        failed publish counts as a failed attempt, so one that keeps failing fails the job)."""
        if task.state is not TaskState.PUBLISHING:
            return []
        job.set_result(task, None)
        task.last_error = error
        task.failures += 1
        if task.failures >= job.max_attempts:
            return self.fail(job, task)
        job.move(task, TaskState.PENDING)
        return []

    def attempt_ended(
        self, job: JobState, task: Task, number: int, state: AttemptState, error: dict
    ) -> list:
        """The attempt failed (`state` FAILED: the job's code raised) or was lost (LOST: its
        process or worker or connection went). It runs again, unless its task ran out of
        attempts (the job fails), or its record is to be skipped, or its task is re-planned."""
        attempt = task.attempt(number)
        if attempt is None or attempt.state is not AttemptState.RUNNING:
            return []  # late news about an attempt that no longer matters
        attempt.move_to(state)
        job.attempt_counts["lost" if state is AttemptState.LOST else "failed"] += 1
        task.last_error = error
        if state is AttemptState.LOST:
            task.losses += 1
            if isinstance(error.get("exit"), dict):  # its process died (an exit status or signal)
                task.deaths += 1
                task.last_exit = error["exit"]
            # Only the job's code killing its process is a reason to cut the task smaller: a
            # lost connection or a worker too busy to heartbeat says nothing about the input.
            died = isinstance(error.get("exit"), dict)
            if died and task.deaths >= self.settings.replan_after_losses:
                replanned = self.replan(job, task)
                if replanned:
                    return replanned
        else:
            task.failures += 1
            if job.skip_bad_records and self._skip_record(task, error):
                job.skip_count += 1  # the record it names is skipped from now on
                # Its failures were the record's, not the task's: they do not count (so a task
                # with several bad records gets to skip each), but --max-skipped does.
                task.failures = max(0, task.failures - defaults.SKIP_AFTER_FAILURES)
                if job.skipped() > job.max_skipped:
                    task.last_error = self._too_many_skipped(job, error.get("message", ""))
                    return self.fail(job, task)
            if error.get("permanent") is True:
                # An error that repeats whatever the attempt (a mapper yielding a non-pair):
                # another attempt would only fail the same way.
                return self.fail(job, task)
        if task.failures >= job.max_attempts or task.losses >= job.max_losses:
            return self.fail(job, task)
        running = task.running()
        if not running:
            job.move(task, TaskState.PENDING)
        elif len(running) == 1:
            job.note_attempt(task, running[0])  # a backup ended: the other runs alone again
        return []

    def attempt_withdrawn(self, job: JobState, task: Task, number: int) -> None:
        """The attempt never started (its worker had no free slot): KILLED, counted neither
        failed nor lost; the task waits, or its other attempt runs alone again."""
        attempt = task.attempt(number)
        if attempt is not None and attempt.state is AttemptState.RUNNING:
            attempt.move_to(AttemptState.KILLED)
            running = task.running()
            if not running:
                job.move(task, TaskState.PENDING)
            elif len(running) == 1:
                job.note_attempt(task, running[0])

    def map_output_lost(self, job: JobState, map_task_id: str, error: dict) -> None:
        """A reducer could not read that committed map output: the map runs again; reduces
        wait until it has (MapReduce paper 3.3)."""
        source = job.task(map_task_id)
        if job.active and source and source.state is TaskState.SUCCEEDED:
            job.move(source, TaskState.PENDING)
            job.set_result(source, None)
            source.last_error = error
            if job.phase is JobPhase.REDUCE:
                job.move_to(JobPhase.MAP)

    def stragglers(self, job: JobState, now: float) -> list:
        """The job's tasks whose attempts should get a backup, the first first (backups.py)."""
        return backups.stragglers(job, self.settings, now)

    # ---- re-planning ------------------------------------------------------------------------

    def replan(self, job: JobState, task: Task) -> list:
        """Replace a map task by its pieces, in its place (see ReplanTask); [] when it has none.
        The lost-attempt limit then applies to each piece afresh, and in the end to pieces that
        cannot be cut any further."""
        if (
            job.cut is None
            or task.kind != "map"
            or task.split is None
            or task.state not in (TaskState.PENDING, TaskState.RUNNING)
        ):
            return []
        cuts = job.cut(task.split)
        if len(cuts) < 2:
            return []
        out: list = []
        for other in task.running():  # a backup: its work is the pieces' now
            other.move_to(AttemptState.KILLED)
            out.append(Abandon(other.worker, job.id, task.id, other.number))
        job.move(task, TaskState.REPLANNED)
        job.count_attempts(task, -1)  # no longer one of the job's tasks
        job.count_skips(task, -1)
        if task.duration is not None:
            job.durations["map"].discard()  # no longer one of the phase's tasks
        pieces = tuple(
            Task("map", task.index, where, split, task.piece + (number,))
            for number, (split, where) in enumerate(cuts)
        )
        position = next(i for i, other in enumerate(job.map_tasks) if other is task)  # rare
        job.map_tasks[position : position + 1] = pieces
        job.by_id.update((piece.id, piece) for piece in pieces)
        for piece in pieces:
            job.note(piece, None)
        return out + [ReplanTask(job.id, task, pieces)]

    # ---- phases and the job's end -----------------------------------------------------------

    def finish_phase(self, job: JobState) -> list:
        """Every task of the phase succeeded: the reduces start, or the job commits."""
        if job.phase is JobPhase.MAP and not job.map_only:
            job.move_to(JobPhase.REDUCE)
            return []
        job.move_to(JobPhase.COMMIT)
        return [CommitJob(job.id)]

    def fail(self, job: JobState, task: Task) -> list:
        """The task ran out of attempts (or failed for good): the job fails."""
        out = self._stop_tasks(job, failed_task=task)
        job.move_to(JobPhase.FAILED)
        return out + [FailJob(job.id, task)]

    def end(self, job: JobState, phase: JobPhase) -> list:
        """The job is failed or cancelled from outside its tasks: its attempts are abandoned."""
        out = self._stop_tasks(job)
        job.move_to(phase)
        return out

    def _stop_tasks(self, job: JobState, failed_task: Task | None = None) -> list:
        out = []
        for task in job.all_tasks():
            for attempt in task.running():
                attempt.move_to(AttemptState.KILLED)
                out.append(Abandon(attempt.worker, job.id, task.id, attempt.number))
            if failed_task is not None and task is failed_task:
                job.move(failed_task, TaskState.FAILED)
            elif task.state in (TaskState.PENDING, TaskState.RUNNING, TaskState.PUBLISHING):
                job.move(task, TaskState.CANCELLED)
        return out

    # ---- --skip-bad-records -----------------------------------------------------------------

    @staticmethod
    def _skip_record(task: Task, error: dict) -> bool:
        """Count a failure against the record it names; True when that makes the record one
        to skip (it has now failed SKIP_AFTER_FAILURES attempts)."""
        record = error.get("record")
        if not isinstance(record, dict) or error.get("permanent") is True:
            return False
        identity, where = record.get("id"), record.get("where")
        if not isinstance(identity, (int, str)) or isinstance(identity, bool):
            return False
        if identity in task.skip:
            return False
        failures = task.record_failures.get(identity, 0) + 1
        task.record_failures[identity] = failures
        if failures < defaults.SKIP_AFTER_FAILURES:
            return False
        cause = str(record.get("cause") or error.get("type") or "")
        task.skip[identity] = f"{where}: {cause}" if cause else str(where)
        return True

    @staticmethod
    def _too_many_skipped(job: JobState, last: str) -> dict:
        return {
            "type": "TooManySkipped",
            "message": (
                f"--skip-bad-records would skip {job.skipped()} records, more than "
                f"--max-skipped {job.max_skipped} allows (the last: {last}); fix the job or "
                f"its input, or raise --max-skipped"
            ),
            "traceback": "",
            "permanent": True,
        }
