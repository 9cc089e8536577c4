"""The coordinator's job records: what each job is, where its files are, how it ended, and what
clients are told about it (state, progress, counters). No sockets: the loop asks, this answers.
(Clients' requests themselves are clients.py's.)"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from enum import Enum

from .. import commit, counters, leftovers, storage
from ..errors import (
    MapReduceError,
    OutputError,
    TaskFailedError,
    TooManySkippedError,
)
from ..scheduler import JobState, Scheduler
from ..skew import SkewTally
from ..steps import shown_output
from ..tasks import Task, TaskState
from .journal import decode_code
from .submission import JobSubmission

log = logging.getLogger("mapreduce.coordinator")


class JobStatus(str, Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class JobRecord:
    id: str
    submission: JobSubmission
    staging: str
    shuffle_dir: str
    submitted: float  # time.monotonic() of this process (moved back on replay)
    submitted_at: float = field(default_factory=time.time)  # wall clock, for history
    finished: float | None = None
    finished_at: float | None = None  # wall clock
    status: JobStatus = JobStatus.RUNNING
    error: MapReduceError | None = None
    counters: dict = field(default_factory=dict)
    final_progress: dict | None = None  # frozen when the job ends; its task table is dropped
    request: str | None = None  # the client's request id: a re-sent SUBMIT finds this job
    settled: bool = False  # ended, and its staging and shuffle files are cleaned up
    resumed: bool = False  # replayed from the journal by a restarted coordinator
    # running_counters' totals so far: [unsucceeded, tasks of the log added, totals, user].
    counted: list | None = field(default=None, repr=False, compare=False)
    # running_skew's sums so far: [unsucceeded, tasks of the log added, SkewTally].
    skew_counted: list | None = field(default=None, repr=False, compare=False)

    @property
    def running(self) -> bool:
        return self.status is JobStatus.RUNNING

    @property
    def over(self) -> bool:
        """Ended and cleaned up: what clients wait for."""
        return not self.running and self.settled


def new_job_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def check_claims(records, submission: JobSubmission) -> None:
    """One live job per output: a second job writing the same output (or one inside it, or
    around it), or replacing a running job's input, is refused at once, --overwrite or not."""
    new = submission.output_dir
    for record in records:
        if not record.running:
            continue
        other = record.submission.output_dir
        if storage.is_within(new, other) or storage.is_within(other, new):
            raise OutputError(
                f"job {record.id} ({record.submission.name}) is already writing "
                f"its output to '{other}', which overlaps --output '{new}'. "
                f"Nothing was run or changed; wait for that job to end, or "
                f"choose another --output."
            )
        for path in record.submission.inputs:
            if storage.is_within(path, new) or storage.is_within(new, path):
                raise OutputError(
                    f"--output '{new}' overlaps the input '{path}' of running "
                    f"job {record.id} ({record.submission.name}). Nothing was "
                    f"run or changed; wait for that job to end, or choose "
                    f"another --output."
                )


def create_job_dirs(job_id: str, submission: JobSubmission, work_dir: str) -> tuple[str, str]:
    """The job's hidden staging directory beside its output and its shuffle directory under the
    work directory; (staging, shuffle dir), or a one-paragraph OutputError with nothing left."""
    staging = commit.staging_dir_for(submission.output_dir, job_id)
    try:
        commit.create_staging(staging)
    except OSError as exc:
        raise OutputError(
            f"cannot create the output's staging directory '{staging}': {exc.strerror or exc}"
        ) from None
    shuffle_dir = storage.join(work_dir, job_id)
    try:
        make_job_work_dir(shuffle_dir)
    except OSError as exc:
        commit.abort_job(staging)
        raise OutputError(
            f"cannot create the job's directory in the work directory "
            f"'{work_dir}': {exc.strerror or exc}"
        ) from None
    return staging, shuffle_dir


def make_work_dir(location: str) -> None:
    """The coordinator's shuffle directory, local or under a URI."""
    storage.make_dirs(location)


def make_job_work_dir(location: str) -> None:
    """A job's shuffle directory; a local one is marked as this process's, after removing those a
    killed run or coordinator left in the same work directory."""
    if storage.is_uri(location):  # no leftovers to look for: they are local (pids)
        storage.make_dirs(location)
        return
    leftovers.remove_abandoned(os.path.join(glob.escape(os.path.dirname(location)), "*"))
    os.makedirs(location)  # a new job's: never there already
    leftovers.mark_owned(location)


def remove_work_dir(location: str) -> None:
    storage.delete_tree_quietly(location)


def job_counters(scheduler: Scheduler, record: JobRecord) -> dict:
    """Sum the counters of committed attempts only: re-executed or backup attempts never count twice."""
    state = scheduler.jobs.get(record.id)
    if state is None:
        return dict(record.counters)
    return counters.job_totals(
        task.result
        for task in state.all_tasks()
        if task.state is TaskState.SUCCEEDED and task.result
    )


def running_counters(scheduler: Scheduler, record: JobRecord) -> dict:
    """job_counters of a running job, kept as its tasks succeed: each WATCH adds the results
    committed since the last one, instead of summing every task's again (and starts over when
    a committed map output was lost)."""
    state = scheduler.jobs.get(record.id)
    if state is None:
        return dict(record.counters)
    counted = record.counted
    if counted is None or counted[0] != state.unsucceeded:
        counted = record.counted = [state.unsucceeded, len(state.succeeded_log), {}, {}]
        for task in state.all_tasks():
            if task.state is TaskState.SUCCEEDED and task.result:
                counters.add_report(counted[2], counted[3], task.result)
    for task in state.succeeded_log[counted[1] :]:
        if task.result:
            counters.add_report(counted[2], counted[3], task.result)
    counted[1] = len(state.succeeded_log)
    return counters.with_user(counted[2], counted[3])


def progress(scheduler: Scheduler, record: JobRecord, now: float) -> dict:
    """Counts for progress displays: tasks done per phase and attempts that went wrong."""
    if record.final_progress is not None:
        return dict(record.final_progress)
    state = scheduler.jobs[record.id]
    # The scheduler keeps the counts as tasks change: a WATCH does not look at every task.
    attempts = state.attempt_counts
    return {
        "maps_done": state.succeeded["map"],
        "maps": len(state.map_tasks),
        "reduces_done": state.succeeded["reduce"],
        "reduces": len(state.reduce_tasks),
        "attempts": attempts["attempts"],
        "failed": attempts["failed"],
        "lost": attempts["lost"],
        "backups": attempts["backups"],
        "workers": len(scheduler.workers),
        "elapsed": (record.finished or now) - record.submitted,
        # A partition or key holding a disproportionate share of the shuffle (None: no skew),
        # from the committed maps' shuffle_stats; frozen with the rest when the job ends.
        "skew": state.memo("skew", lambda: running_skew(state, record)),
    }


def running_skew(state: JobState, record: JobRecord) -> dict | None:
    """skew_report of the committed maps, kept as they commit (as running_counters): each
    WATCH adds the maps committed since the last one (and starts over when a committed map
    output was lost), instead of reading every map's result again."""
    counted = record.skew_counted
    if counted is None or counted[0] != state.unsucceeded:
        counted = record.skew_counted = [state.unsucceeded, len(state.succeeded_log), SkewTally()]
        for task in state.map_tasks:
            if task.state is TaskState.SUCCEEDED:
                counted[2].add(task.result)
    else:
        for task in state.succeeded_log[counted[1] :]:
            if task.kind == "map":
                counted[2].add(task.result)
    counted[1] = len(state.succeeded_log)
    return counted[2].report(len(state.reduce_tasks))


def job_state(scheduler: Scheduler, record: JobRecord, now: float) -> dict:
    """What a client watching the job is told."""
    # An ended job is reported as such once its files are cleaned up: a client that sees it
    # finish finds no staging or shuffle files left.
    status = record.status.value if record.over else JobStatus.RUNNING.value
    counts = progress(scheduler, record, now)
    if record.running and counts["attempts"] == 0:
        status = "queued"
    error = record.error if record.over else None
    return {
        "job": record.id,
        "name": record.submission.name,
        "status": status,
        "output": shown_output(record.submission.output_dir),
        "submitted_at": record.submitted_at,
        "finished_at": record.finished_at if record.over else None,
        "progress": counts,
        # A running job's counters so far: those of the attempts committed until now.
        "counters": running_counters(scheduler, record) if record.running else record.counters,
        "error": error.paragraph() if error else None,
        "exit_code": error.exit_code if error else 0,
    }


def task_failure(record: JobRecord, task: Task) -> TaskFailedError:
    """The job's error when `task` ran out of attempts: one paragraph with the last cause."""
    error = task.last_error or {}
    lost = task.losses >= record.submission.max_losses
    kind = TooManySkippedError if error.get("type") == "TooManySkipped" else TaskFailedError
    return kind(
        task.kind,
        task.index,
        task.where,
        task.losses if lost else task.failures,
        error.get("message") or error.get("type") or "unknown error",
        error.get("traceback", ""),
        lost=lost,
        log_tail=str(error.get("log_tail") or ""),
        deaths=task.deaths,
        last_exit=task.last_exit,
        piece=".".join(map(str, task.piece)),
        permanent=error.get("permanent") is True and not lost,
    )


def summary(record: JobRecord) -> dict:
    """The journal's record of a job that ended: all that history keeps of it."""
    submission = record.submission
    return {
        "type": "ended",
        "job": record.id,
        "name": submission.name,
        "output": submission.output_dir,
        "staging": record.staging,
        "shuffle_dir": record.shuffle_dir,
        "request": record.request,
        "submitted_at": record.submitted_at,
        "finished_at": record.finished_at,
        "status": record.status.value,
        "error": record.error.paragraph() if record.error else None,
        "exit_code": record.error.exit_code if record.error else 0,
        "counters": record.counters,
        "progress": record.final_progress,
    }


def from_summary(summary: dict, now: float, wall: float) -> JobRecord:
    """A finished job from the journal, as history: its summary, no job code."""
    submission = JobSubmission(summary["name"], b"", [], [], 0, summary["output"])
    error = None
    if summary.get("error"):
        error = MapReduceError(summary["error"])
        error.exit_code = int(summary.get("exit_code") or 1)
    finished_at = summary.get("finished_at") or wall
    return JobRecord(
        summary["job"],
        submission,
        summary.get("staging", ""),
        summary.get("shuffle_dir", ""),
        now - (wall - summary.get("submitted_at", wall)),
        submitted_at=summary.get("submitted_at", wall),
        finished=now - (wall - finished_at),
        finished_at=finished_at,
        status=JobStatus(summary["status"]),
        error=error,
        counters=summary.get("counters") or {},
        final_progress=summary.get("progress") or {},
        request=summary.get("request"),
    )


def from_submitted(submitted: dict, now: float, wall: float) -> JobRecord:
    """A running job from the journal's record of its submission."""
    submission = JobSubmission.from_wire(submitted["submission"], decode_code(submitted["code"]))
    return JobRecord(
        submitted["job"],
        submission,
        submitted["staging"],
        submitted["shuffle_dir"],
        now - (wall - submitted["at"]),
        submitted_at=submitted["at"],
        request=submitted.get("request"),
        resumed=True,
    )


def reclaim_job_dirs(record: JobRecord) -> bool:
    """After a restart: mark the job's local staging and shuffle directories as this process's
    again (so no other run removes them as abandoned). True when the staging directory is gone.
    On an object store there is nothing to mark, and a staging prefix with no object yet (no
    task has published) is not gone: it has no directory to lose."""
    if storage.is_uri(record.staging):
        return False
    if not os.path.isdir(record.staging):
        return True
    attempts = os.path.join(record.staging, commit.ATTEMPTS_DIR)
    if os.path.isdir(attempts):
        leftovers.mark_owned(attempts)
    if os.path.isdir(record.shuffle_dir):
        leftovers.mark_owned(record.shuffle_dir)
    return False


def workers_state(scheduler: Scheduler, now: float) -> list:
    """The registered workers: who they are, their slots, what they run, when last heard from."""
    wall = time.time()
    return [
        {
            "id": w.id,
            **w.info,
            "capacity": w.capacity,
            "running": len(w.running),
            "free_slots": w.capacity - len(w.running),
            "attempts": [list(key) for key in sorted(w.running)],
            "tasks_done": w.tasks_done,
            "last_heartbeat_s": round(now - w.last_seen, 2),
            "last_heartbeat_at": wall - (now - w.last_seen),
        }
        for w in scheduler.workers.values()
    ]


def task_header(
    record: JobRecord,
    kind: str,
    index: int,
    task_id: str,
    attempt: int,
    map_results: list,
    split: dict | None = None,
    skip: dict | None = None,
) -> dict:
    """What an attempt is told: its input (a split: `split`, else the submission's split
    `index`; or every committed map's files for its partition, `map_results` in map order), its
    private output directory, and (--skip-bad-records) the records to skip, id -> where."""
    submission = record.submission
    header = {
        "job": record.id,
        "task": task_id,
        "attempt": attempt,
        "kind": kind,
        "output_format": submission.output_format,
        "log": commit.log_path(record.staging, task_id, attempt),
    }
    if skip:
        header["skip"] = [[identity, where] for identity, where in skip.items()]
    if kind == "map":
        header["split"] = split if split is not None else submission.splits[index]
        header["skip_bad_records"] = submission.skip_bad_records
        header["sort_buffer"] = submission.sort_buffer
        header["spill_records"] = submission.spill_records
        if submission.num_reducers == 0:
            header["out_dir"] = commit.attempt_dir(record.staging, task_id, attempt)
            header["part"] = index
        else:
            header["out_dir"] = storage.join(record.shuffle_dir, f"{task_id}-a{attempt}")
            header["partitions"] = submission.num_reducers
    else:
        header["partition"] = index
        header["inputs"] = [
            path
            for result in map_results
            for path in (result or {}).get("files", {}).get(str(index), [])
        ]
        header["out_dir"] = commit.attempt_dir(record.staging, task_id, attempt)
    return header
