"""Publish, commit and clean up, off the loop thread.

Renaming an attempt's output into staging, finishing Parquet parts and committing a job can take
seconds on an object store; the coordinator's loop must keep heartbeating meanwhile. So the loop
hands these steps to a `Committer`, which carries them out one at a time, in order, on its own
thread, and reports each outcome as an event (`Published`, `PublishFailed`, `Committed`,
`CommitFailed`, `CleanedUp`) that the loop feeds back to the scheduler. `fileno()` becomes readable when
outcomes wait, so the loop's poll wakes at once. One thread, one queue: a job's clean-up always
runs after the publishes queued before it, so nothing is renamed into a staging directory that is
being removed.

The loop asks for steps as it goes and hands them over once per iteration (`hand_over`): the
thread is woken once for all the publishes of an iteration, not once for each (that wake-up, and
the two threads taking turns with the GIL, cost as much as the rest of a publish). The thread
reports a batch's outcomes together, with one write to `fileno()`.

`Committer(background=False)` does each step at once on the caller's thread (`run --inline`).

`fence` (an elected leader's `Leadership.confirm`): asked right before each step touches the
output or the staging directory; a coordinator that is no longer the leader does nothing more
(and reports nothing: it is stepping down).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Callable, ClassVar

from .. import commit, skiplog, storage
from ..errors import MapReduceError, OutputError
from ..logformat import about
from ..output import finish_parts
from ..tasks import Task
from .jobs import JobRecord, remove_work_dir

log = logging.getLogger("mapreduce.coordinator")


@dataclass(frozen=True)
class Published:
    job: str
    task: str
    attempt: int


@dataclass(frozen=True)
class PublishFailed:
    job: str
    task: str
    attempt: int
    error: dict


@dataclass(frozen=True)
class Committed:
    job: str


@dataclass(frozen=True)
class CommitFailed:
    job: str
    error: MapReduceError


@dataclass(frozen=True)
class CleanedUp:
    job: str


class Committer:
    # Test hook (fault injection, tests/faulty_cli.py): each is called with (record, task)
    # before a task's output is published, and may delete files to play a failed disk. Empty in
    # production; nothing else reads it.
    before_publish: ClassVar[list[Callable[[JobRecord, Task], None]]] = []

    def __init__(self, background: bool = True, fence: Callable[[], bool] | None = None):
        self.fenced = fence is not None
        self.fence = fence or (lambda: True)
        self._outcomes: list = []
        self._lock = threading.Lock()
        self._wakeup_read, self._wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_read, False)
        os.set_blocking(self._wakeup_write, False)
        self._queue: queue.Queue = queue.Queue()  # lists of steps, in the order they were asked for
        self._asked: list[Callable[[], object]] = []  # steps not yet handed over
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._serve, name="committer", daemon=True)
            self._thread.start()

    # ---- what the loop asks for -----------------------------------------------------------------

    def publish(self, record: JobRecord, task: Task, attempt: int) -> None:
        """Put the accepted attempt's output in place; `Published` or `PublishFailed` follows."""
        self._submit(lambda: self._publish(record, task, attempt))

    def commit(self, record: JobRecord, pieces: dict | None = None) -> None:
        """Finish the parts and commit the job's output; `Committed` or `CommitFailed` follows.
        `pieces`: a map-only job's re-planned tasks, part -> its pieces' task ids in order
        (Scheduler's pieces_by_part), joined into their parts first."""
        self._submit(lambda: self._commit(record, pieces or {}))

    def clean_up(self, record: JobRecord, keep_output: bool) -> None:
        """Remove the job's shuffle files, and its staging unless its output was committed;
        `CleanedUp` follows."""
        self._submit(lambda: self._clean_up(record, keep_output))

    def outcomes(self) -> list:
        """The outcomes ready so far, in the order the steps ran."""
        try:
            while os.read(self._wakeup_read, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            ready, self._outcomes = self._outcomes, []
        return ready

    def fileno(self) -> int:
        return self._wakeup_read

    def hand_over(self) -> None:
        """Give the thread the steps asked for since the last call, in order, in one go. (Steps
        wait for this: the loop calls it once per iteration; `drain` and `close` call it too.)"""
        if self._asked:
            steps, self._asked = self._asked, []
            self._queue.put(steps)

    def drain(self) -> None:
        """Wait until every step asked for so far has been carried out."""
        if self._thread is not None:
            self.hand_over()
            self._queue.join()

    def close(self) -> None:
        """Carry out what is queued, then stop the thread."""
        if self._thread is not None:
            self.hand_over()
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        os.close(self._wakeup_read)
        os.close(self._wakeup_write)

    # ---- carrying it out ------------------------------------------------------------------------

    def _submit(self, step: Callable[[], object]) -> None:
        if self._thread is None:
            if self.fence():
                self._finish([step()])
        else:
            self._asked.append(step)

    def _serve(self) -> None:
        while True:
            steps = self._queue.get()
            try:
                if steps is None:
                    return
                self._finish([self._carry_out(step) for step in steps])
            finally:
                self._queue.task_done()

    def _carry_out(self, step: Callable[[], object]):
        try:
            if not self.fence():
                log.warning("not the leader any more: a publish, commit or clean-up skipped")
                return None
            return step()
        except BaseException:  # a bug: log it, keep serving the other jobs
            log.exception("the committer failed")
            return None

    def _finish(self, outcomes: list) -> None:
        outcomes = [outcome for outcome in outcomes if outcome is not None]
        if not outcomes:
            return
        with self._lock:
            self._outcomes += outcomes
        try:
            os.write(self._wakeup_write, b"!")
        except BlockingIOError:
            pass  # the pipe is full: the loop is awake already

    def _publish(self, record: JobRecord, task: Task, attempt: int):
        try:
            for hook in self.before_publish:
                hook(record, task)
            if task.kind == "map" and task.piece and not record.submission.num_reducers:
                # A piece of a re-planned map-only task: joined into its task's part at commit.
                commit.publish_piece(record.staging, task.id, attempt)
            elif not (task.kind == "map" and record.submission.num_reducers):
                # Map output feeding reducers stays in its attempt's directory: reducers are
                # told its paths. Reduce output and map-only output move into staging.
                commit.publish_attempt(record.staging, task.id, attempt)
            skipped = (task.result or {}).get("skipped")
            if skipped or record.submission.skip_bad_records:
                # Only --skip-bad-records writes these lists (and an earlier attempt's may have
                # to go): a job without it does no I/O here for a map feeding reducers.
                skiplog.record_task(record.staging, task.id, skipped)
        except Exception as exc:  # OSError, pyarrow's ArrowInvalid (a ValueError), ...
            ran = task.attempt(attempt)
            worker = ran.worker if ran is not None else None
            log.warning(
                "%s %s attempt %s (on %s): could not publish its output: %s",
                record.id,
                task.id,
                attempt,
                worker,
                exc,
                extra=about(record.id, task.id, attempt, worker),
            )
            error = {
                "type": "PublishError",
                "traceback": "",
                "message": f"its output could not be put in place: {type(exc).__name__}: {exc}",
            }
            return PublishFailed(record.id, task.id, attempt, error)
        return Published(record.id, task.id, attempt)

    def _commit(self, record: JobRecord, pieces: dict):
        """Join re-planned tasks' pieces into their parts, finish the parts for their format
        (Parquet parts get one schema), then the commit: it ends with the new output whole in
        place, or the old one as it was. After a restart in the middle of a commit, what the
        last one did is looked at first."""
        submission = record.submission
        output = submission.output_dir
        try:
            if commit.committed_by(output, record.id):
                commit.finish_commit(record.staging, output)
                return Committed(record.id)
            if record.resumed and not _staged(record.staging):
                # Only a commit removes staging before the job ends; it did, then restarted.
                if storage.exists(storage.join(output, commit.SUCCESS)):
                    log.warning("%s: its commit had finished before the restart", record.id)
                    return Committed(record.id)
                return CommitFailed(
                    record.id,
                    OutputError(
                        f"the job's staging directory '{record.staging}' vanished before its "
                        f"output was committed. Nothing was committed; submit the job again."
                    ),
                )
            # --skip-bad-records: _logs/skipped, earlier steps' lines first.
            skiplog.gather(record.staging, submission.skipped_earlier)
            commit.join_pieces(record.staging, pieces, submission.output_format)
            finish_parts(record.staging, submission.output_format)
            if not self.fence():  # finishing the parts took a while: still the leader?
                log.warning(
                    "%s: not the leader any more: its commit is left to the leader", record.id
                )
                return None
            # An elected leader's fence is asked again before each object of an object-store
            # commit (only then passed: the plain call stays the one test hooks wrap).
            fenced = {"still_allowed": self.fence} if self.fenced else {}
            commit.commit_job(record.staging, output, submission.overwrite, record.id, **fenced)
        except commit.CommitFenced:
            log.warning("%s: not the leader any more: its commit stopped half way", record.id)
            return None
        except Exception as exc:
            if not isinstance(exc, MapReduceError):
                log.exception("%s: commit failed", record.id)
            error = (
                exc
                if isinstance(exc, commit.OutputTaken)
                else OutputError(
                    f"the job's tasks all succeeded but its output could not be committed to "
                    f"'{output}': {type(exc).__name__}: {exc}. Nothing was "
                    f"committed; the output directory is as it was before the job."
                )
            )
            return CommitFailed(record.id, error)
        return Committed(record.id)

    def _clean_up(self, record: JobRecord, keep_output: bool) -> CleanedUp:
        if not keep_output:
            commit.abort_job(record.staging)
        remove_work_dir(record.shuffle_dir)
        return CleanedUp(record.id)


def _staged(staging: str) -> bool:
    """Staging is there: a local directory, or objects under an object store's prefix (which
    has no directory of its own)."""
    if storage.is_uri(staging):
        return storage.holds_anything(staging)
    return storage.exists(staging)
