"""The scheduling core: events in, instructions out, no I/O.

The coordinator's socket loop feeds it what happened (a worker registered, an attempt finished or
failed, time passed) and carries out what it returns (send this task to that worker, abandon that
attempt, publish a task's output, commit or fail a job). Time is always passed in as `now`, so every
timeout decision can be tested in microseconds without sockets or sleeps.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
from dataclasses import dataclass, field
from typing import Callable

from . import defaults
from .tasks import (
    ENDED_PHASES,
    JOB_TRANSITIONS,
    Attempt,
    AttemptState,
    IllegalTransition,
    JobPhase,
    Task,
    TaskState,
)

# ---- instructions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assign:
    """Send this attempt to that worker. `seq` numbers the TASKs sent to one worker (1, 2, ...,
    never reused while the scheduler lives): the worker's reports say which it has heard of, so a
    lost TASK is told from one still on its way (`worker_report`). An attempt whose TASK was lost
    is assigned again with a new number."""

    worker: str
    job: str
    task: Task
    attempt: int
    seq: int = 0


@dataclass(frozen=True)
class Abandon:
    worker: str
    job: str
    task: str
    attempt: int


@dataclass(frozen=True)
class PublishTask:
    """Make this attempt's output the task's output (the coordinator renames it into place), then
    report `task_published` or `publish_failed`: nothing commits before every publish succeeded."""

    job: str
    task: Task
    attempt: int


@dataclass(frozen=True)
class ReplanTask:
    """A map task whose attempts keep losing their process was cut into smaller tasks, which take
    its place in the job's map order (reducers read map outputs in that order, and a map-only
    job's pieces make the replaced task's one part). Nothing to send: the coordinator records it
    (a journal replays it with `Scheduler.replan_task`; the cut is a pure function of the task's
    split, so the replay gives the same pieces) and from then on hands out the pieces' splits."""

    job: str
    task: Task  # now REPLANNED
    pieces: tuple  # the Tasks that replace it, in order, each with its own split


@dataclass(frozen=True)
class CommitJob:
    job: str


@dataclass(frozen=True)
class FailJob:
    job: str
    task: Task  # the task that ran out of attempts


# ---- state --------------------------------------------------------------------------------------


@dataclass
class SchedulerSettings:
    heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL_S
    liveness: int = defaults.HEARTBEAT_LIVENESS
    backup_min_runtime: float = defaults.BACKUP_MIN_RUNTIME_S
    backup_slowdown: float = defaults.BACKUP_SLOWDOWN_FACTOR
    # A reduce's input counts as at least this many bytes when its expected runtime is scaled by
    # its input (start-up dominates a small task).
    backup_input_floor: int = defaults.BACKUP_INPUT_FLOOR_BYTES
    task_resends: int = defaults.TASK_RESENDS
    # A map task that can be cut into smaller tasks is, once this many attempts died with their
    # process (a lost connection does not count).
    replan_after_losses: int = defaults.REPLAN_AFTER_LOST_ATTEMPTS

    @property
    def expiry(self) -> float:
        return self.heartbeat_interval * self.liveness


@dataclass(slots=True)
class WorkerState:
    id: str
    capacity: int
    last_seen: float
    info: dict = field(default_factory=dict)
    running: set = field(default_factory=set)  # {(job, task id, attempt)}
    tasks_done: int = 0
    seqs: dict = field(default_factory=dict)  # (job, task id, attempt) -> its TASK's number
    resends: dict = field(default_factory=dict)  # (job, task id, attempt) -> TASKs lost so far
    # It answered a TASK with "no free slot": it runs something this scheduler does not know of,
    # so it gets nothing more until its next report says what (`worker_report`).
    full: bool = False

    @property
    def free_slots(self) -> int:
        return 0 if self.full else self.capacity - len(self.running)


@dataclass
class JobState:
    id: str
    map_tasks: list
    reduce_tasks: list
    max_attempts: int
    max_losses: int
    phase: JobPhase = JobPhase.MAP  # changed only by move_to, within this module
    # The pure function that cuts a map task's split into smaller splits, [(split, where)], or
    # [] when it cannot be cut (inputs.cut_split behind the coordinator); None: never re-plan.
    cut: Callable[[dict], list] | None = None
    by_id: dict = field(default_factory=dict)  # task id -> Task, including replaced ones
    # --skip-bad-records: a record the job's code raised on twice is skipped by later attempts;
    # the job fails when it would skip more than max_skipped records (malformed ones included).
    skip_bad_records: bool = False
    max_skipped: int = defaults.MAX_SKIPPED_RECORDS

    # Indexes kept in step with every task's state (`note`), so that no event scans the tasks:
    # per kind, the PENDING tasks in phase order (a heap of (index, piece, order, task), stale
    # entries dropped when they reach the top), the RUNNING ones' attempts oldest first (a heap
    # of (started, order, task, attempt), for backups), the number SUCCEEDED, the finished
    # durations' median; `map_epoch` counts map tasks entering or leaving SUCCEEDED.
    queues: dict = field(default_factory=lambda: {"map": [], "reduce": []})
    started: dict = field(default_factory=lambda: {"map": [], "reduce": []})
    succeeded: dict = field(default_factory=lambda: {"map": 0, "reduce": 0})
    finished: dict = field(default_factory=lambda: {"map": 0, "reduce": 0})  # durations set
    durations: dict = field(default_factory=dict)
    map_epoch: int = 0
    cached: dict = field(default_factory=dict)  # what depends only on map_epoch (see memo)
    # The attempts of the job's tasks (replaced ones' not), for progress reports.
    attempt_counts: dict = field(default_factory=dict)
    # The tasks in the order they succeeded, and how many times one stopped being SUCCEEDED (its
    # map output was lost) or the tasks were indexed afresh: what a running total reads.
    succeeded_log: list = field(default_factory=list)
    unsucceeded: int = 0
    skip_count: int = 0  # --skip-bad-records: what skipped() says, kept as tasks change

    def __post_init__(self) -> None:
        self.by_id = {task.id: task for task in self.all_tasks()}
        self.reindex()

    def reindex(self) -> None:
        """Build the indexes from the tasks as they stand (a new or restored job)."""
        self.queues = {"map": [], "reduce": []}
        self.started = {"map": [], "reduce": []}
        self.succeeded = {"map": 0, "reduce": 0}
        self.durations = {"map": _Median(), "reduce": _Median()}
        self.attempt_counts = {"attempts": 0, "failed": 0, "lost": 0, "backups": 0}
        self.skip_count = 0
        self.succeeded_log = []
        self.unsucceeded += 1
        self.map_epoch += 1
        for task in self.all_tasks():
            self.count_attempts(task, 1)
            self.count_skips(task, 1)
            self.note(task, None)
            for attempt in task.running():
                self.note_attempt(task, attempt)
            if task.duration is not None:
                self.durations[task.kind].add(task.duration)

    def note(self, task: Task, old: TaskState | None) -> None:
        """`task` moved from state `old` (None: it is new) to its state now."""
        new = task.state
        if old is TaskState.SUCCEEDED:
            self.succeeded[task.kind] -= 1
            self.unsucceeded += 1
        if new is TaskState.SUCCEEDED:
            self.succeeded[task.kind] += 1
            self.succeeded_log.append(task)
        if task.kind == "map" and TaskState.SUCCEEDED in (old, new):
            self.map_epoch += 1
        if new is TaskState.PENDING:
            heapq.heappush(self.queues[task.kind], (task.index, task.piece, next(_order), task))

    def count_attempts(self, task: Task, sign: int) -> None:
        """Add (sign 1) or take away (-1, a re-planned task) a task's attempts from the counts."""
        counts = self.attempt_counts
        counts["attempts"] += sign * len(task.attempts)
        for attempt in task.attempts:
            counts["backups"] += sign * attempt.backup
            if attempt.state is AttemptState.FAILED:
                counts["failed"] += sign
            elif attempt.state is AttemptState.LOST:
                counts["lost"] += sign

    def count_skips(self, task: Task, sign: int) -> None:
        """Add (1) or take away (-1, a re-planned task) what a task skips from skip_count."""
        if self.skip_bad_records:
            self.skip_count += sign * (len(task.skip) + _malformed(task.result))

    def set_result(self, task: Task, result: dict | None) -> None:
        """The task's accepted attempt's report (None: it has none any more)."""
        if self.skip_bad_records:
            self.skip_count += _malformed(result) - _malformed(task.result)
        task.result = result

    def memo(self, name: str, compute: Callable):
        """What `compute` gives for the job's map outputs as they stand: worked out again only
        once a map task's output changed (one succeeded, or has to run again)."""
        if self.cached.get("map_epoch") != self.map_epoch:
            self.cached = {"map_epoch": self.map_epoch}
        if name not in self.cached:
            self.cached[name] = compute()
        return self.cached[name]

    def note_attempt(self, task: Task, attempt: Attempt) -> None:
        """`attempt` of `task` runs (it started, or the task's other attempt ended): a backup
        candidate once it runs alone for long."""
        heap = self.started[task.kind]
        while heap and not _runs_alone(heap[0][2], heap[0][3]):
            heapq.heappop(heap)
        heapq.heappush(heap, (attempt.started, next(_order), task, attempt))

    def note_duration(self, task: Task, duration: float) -> None:
        if task.duration is not None:
            self.durations[task.kind].discard()  # rebuilt from the tasks when next asked
        task.duration = duration
        self.durations[task.kind].add(duration)
        self.finished[task.kind] += 1

    def typical(self, kind: str) -> float | None:
        """The median finished duration of the phase's tasks (None: none finished)."""
        median = self.durations[kind]
        if median.stale:
            tasks = self.map_tasks if kind == "map" else self.reduce_tasks
            median.rebuild(t.duration for t in tasks if t.duration is not None)
        return median.value()

    def next_pending(self) -> Task | None:
        """The first PENDING task of the phase, in phase order (None: none)."""
        kind = "map" if self.phase is JobPhase.MAP else "reduce"
        queue = self.queues[kind]
        while queue:
            task = queue[0][3]
            if task.state is TaskState.PENDING:
                return task
            heapq.heappop(queue)  # it started, was re-planned or cancelled since
        return None

    def phase_done(self) -> bool:
        kind, tasks = (
            ("map", self.map_tasks) if self.phase is JobPhase.MAP else ("reduce", self.reduce_tasks)
        )
        return self.succeeded[kind] == len(tasks)

    def move_to(self, new: JobPhase) -> None:
        if new not in JOB_TRANSITIONS[self.phase]:
            raise IllegalTransition(f"job {self.id}: {self.phase.value} -> {new.value}")
        self.phase = new

    @property
    def map_only(self) -> bool:
        return not self.reduce_tasks

    @property
    def active(self) -> bool:
        return self.phase in (JobPhase.MAP, JobPhase.REDUCE)

    @property
    def ended(self) -> bool:
        return self.phase in ENDED_PHASES

    def phase_tasks(self) -> list:
        return (
            self.map_tasks
            if self.phase is JobPhase.MAP
            else self.reduce_tasks
            if self.phase is JobPhase.REDUCE
            else []
        )

    def task(self, task_id: str) -> Task | None:
        return self.by_id.get(task_id)

    def pieces_by_part(self) -> dict[int, list]:
        """A map-only job's re-planned tasks: part number -> the ids of the pieces that make that
        part, in order (their outputs are joined into it at commit)."""
        parts: dict[int, list] = {}
        if not self.map_only:
            return parts  # a job with reducers: they read the pieces' map outputs themselves
        for task in self.map_tasks:
            if task.piece:
                parts.setdefault(task.index, []).append(task.id)
        return parts

    def all_tasks(self) -> list:
        return self.map_tasks + self.reduce_tasks

    def skipped(self) -> int:
        """Records skipped so far: those the tasks were told to skip, and the malformed records
        their accepted attempts skipped."""
        return self.skip_count


def _malformed(result: dict | None) -> int:
    """The malformed records an accepted attempt skipped, from its report."""
    return int(((result or {}).get("counters") or {}).get("bad_records_skipped", 0) or 0)


_order = itertools.count()  # ties in the index heaps: never compare two tasks


def _runs_alone(task: Task, attempt: Attempt) -> bool:
    """The attempt is its task's only running one (a backup candidate)."""
    if attempt.state is not AttemptState.RUNNING or task.state is not TaskState.RUNNING:
        return False
    attempts = task.attempts
    if len(attempts) == 1:  # the usual case: `attempt` itself, running
        return True
    running = 0
    for other in attempts:
        running += other.state is AttemptState.RUNNING
    return running == 1


class _Median:
    """The median of durations as they are added, O(log n) each (two heaps): what
    statistics.median gives for the same values. A removal (a task's duration replaced, rare)
    marks it stale: it is then rebuilt from the tasks."""

    __slots__ = ("low", "high", "stale")

    def __init__(self) -> None:
        self.low: list = []  # the smaller half, negated (a max-heap); one more when odd
        self.high: list = []
        self.stale = False

    def add(self, value: float) -> None:
        if self.low and value > -self.low[0]:
            heapq.heappush(self.high, value)
        else:
            heapq.heappush(self.low, -value)
        if len(self.low) > len(self.high) + 1:
            heapq.heappush(self.high, -heapq.heappop(self.low))
        elif len(self.high) > len(self.low):
            heapq.heappush(self.low, -heapq.heappop(self.high))

    def discard(self) -> None:
        self.stale = True

    def rebuild(self, values) -> None:
        self.low, self.high, self.stale = [], [], False
        for value in values:
            self.add(value)

    def value(self) -> float | None:
        if not self.low:
            return None
        if len(self.low) > len(self.high):
            return -self.low[0]
        return (-self.low[0] + self.high[0]) / 2


def _new_job(
    job_id: str,
    map_wheres: list[str],
    num_reducers: int,
    max_attempts: int,
    max_losses: int,
    map_splits: list | None,
    cut: Callable[[dict], list] | None,
    skip_bad_records: bool,
    max_skipped: int,
) -> JobState:
    """A job's task table: one map task per split, `num_reducers` reduce tasks, all pending."""
    splits = map_splits if map_splits is not None else [None] * len(map_wheres)
    maps = [
        Task("map", i, where, split) for i, (where, split) in enumerate(zip(map_wheres, splits))
    ]
    reduces = [Task("reduce", r, f"partition {r}") for r in range(num_reducers)]
    return JobState(
        job_id,
        maps,
        reduces,
        max_attempts,
        max_losses,
        cut=cut,
        skip_bad_records=skip_bad_records,
        max_skipped=max_skipped,
    )


def _median_rate(pairs: list, floor: int) -> float | None:
    """The median of duration / bytes over (duration, bytes) pairs with more than `floor` bytes."""
    rates = [duration / size for duration, size in pairs if size > floor]
    return statistics.median(rates) if rates else None


def _shuffle_bytes(map_task: Task) -> dict:
    """A committed map task's bytes of output per partition (str keys), from its result."""
    stats = (map_task.result or {}).get("shuffle_stats") or {}
    return stats.get("bytes") or {}


def _map_rate(job: JobState, floor: int) -> float | None:
    """The maps' median seconds per byte of map output."""
    maps = [
        (t.duration, sum(int(n) for n in _shuffle_bytes(t).values()))
        for t in job.map_tasks
        if t.state is TaskState.SUCCEEDED and t.duration is not None
    ]
    return _median_rate(maps, floor)


def _reduce_input_bytes(job: JobState) -> dict:
    """Reduce task index -> the bytes of map output it reads, from the committed map results
    (their shuffle_stats); {} when the maps did not report them."""
    sizes: dict = {}
    for task in job.map_tasks:
        if task.state is not TaskState.SUCCEEDED:
            continue
        for partition, size in _shuffle_bytes(task).items():
            sizes[int(partition)] = sizes.get(int(partition), 0) + int(size)
    if not sizes:
        return {}
    return {task.index: sizes.get(task.index, 0) for task in job.reduce_tasks}


class Scheduler:
    def __init__(self, settings: SchedulerSettings | None = None):
        self.settings = settings or SchedulerSettings()
        self.jobs: dict[str, JobState] = {}  # insertion order is submission order (FIFO)
        self.workers: dict[str, WorkerState] = {}
        # TASKs numbered per worker id, kept across its registrations: a message of an earlier
        # registration still on its way never carries a number a new TASK has.
        self.task_seqs: dict[str, int] = {}
        self._free: dict[str, None] = {}  # the ids of workers with a free slot, as a set

    def _per_byte(self, job: JobState, sizes: dict) -> float:
        """_seconds_per_byte, worked out again only when another reduce finished."""
        memo = job.memo("per_byte", dict)
        if memo.get("finished") != job.finished["reduce"]:
            memo["finished"] = job.finished["reduce"]
            memo["rate"] = self._seconds_per_byte(job, job.reduce_tasks, sizes)
        return memo["rate"]

    def _seconds_per_byte(self, job: JobState, reduces: list, sizes: dict) -> float:
        """How long a reduce is expected to take per input byte: as its finished peers took, or
        as the maps took per byte of map output when no finished peer read enough to tell."""
        floor = self.settings.backup_input_floor
        finished = [(t.duration, sizes.get(t.index, 0)) for t in reduces if t.duration is not None]
        rate = _median_rate(finished, floor)
        if rate is None:
            rate = job.memo("map_rate", lambda: _map_rate(job, floor))
        return rate or 0.0

    # ---- events ---------------------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        map_wheres: list[str],
        num_reducers: int,
        max_attempts: int,
        max_losses: int = defaults.MAX_LOST_ATTEMPTS,
        now: float = 0.0,
        map_splits: list | None = None,
        cut: Callable[[dict], list] | None = None,
        skip_bad_records: bool = False,
        max_skipped: int = defaults.MAX_SKIPPED_RECORDS,
    ) -> list:
        """A job's tasks: one map task per split (`map_wheres` describe them, `map_splits` are
        what their attempts are sent), `num_reducers` reduce tasks. With `cut`, a map task that
        loses attempts to dying processes is re-planned into the pieces `cut(its split)` gives."""
        self.jobs[job_id] = _new_job(
            job_id,
            map_wheres,
            num_reducers,
            max_attempts,
            max_losses,
            map_splits,
            cut,
            skip_bad_records,
            max_skipped,
        )
        if not self.jobs[job_id].map_tasks:
            return self._finish_phase(self.jobs[job_id], now)
        return self._dispatch(now)

    def restore_job(
        self,
        job_id: str,
        map_wheres: list[str],
        num_reducers: int,
        max_attempts: int,
        max_losses: int,
        attempts: dict[str, int],
        published: dict[str, dict],
        now: float,
        map_splits: list | None = None,
        cut: Callable[[dict], list] | None = None,
        replanned: list | tuple = (),
        skip_bad_records: bool = False,
        max_skipped: int = defaults.MAX_SKIPPED_RECORDS,
    ) -> list:
        """A job replayed from the coordinator's journal: `attempts` started per task id before
        the restart (none of them runs now), `published` the result of each task whose output
        was in place. It continues from there: published tasks never run again. `replanned`:
        the map tasks re-planned before the restart, in the order they were; `cut` (as for
        add_job) cuts them again into the same pieces, which the other records may be about."""
        job = _new_job(
            job_id,
            map_wheres,
            num_reducers,
            max_attempts,
            max_losses,
            map_splits,
            cut,
            skip_bad_records,
            max_skipped,
        )
        for task_id in replanned:
            task = job.task(task_id)
            if task is not None:
                self._replan(job, task)  # already journalled: its ReplanTask is not repeated
        for task in job.all_tasks():
            task.restore(attempts.get(task.id, 0), now, published.get(task.id))
        job.reindex()
        self.jobs[job_id] = job
        out: list = []
        while job.active and job.phase_done():
            out += self._finish_phase(job, now)
        return out + self._dispatch(now)

    def worker_ready(
        self,
        worker_id: str,
        capacity: int,
        now: float,
        info: dict | None = None,
        heard: int | None = None,
    ) -> list:
        """A worker registered, or registered again after reconnecting. It abandoned what its
        earlier session ran: the attempts whose TASK number that session had heard of (`heard`,
        the highest; None: all of them) are lost, once. An attempt assigned later (its TASK
        crossed the new READY: the worker sends its held results first, and a result frees a
        slot) may be on its way to the new session, or lost with the old connection: it stays
        assigned, and the new session's reports decide (`worker_report`: it runs, or it is sent
        again), so one reconnect never counts an attempt running on the worker as lost."""
        old = self.workers.get(worker_id)
        worker = WorkerState(worker_id, max(1, capacity), now, info or {})
        out: list = []
        if old is not None:
            if heard is not None:
                for key in [k for k in old.running if old.seqs.get(k, 0) > heard]:
                    old.running.discard(key)
                    worker.running.add(key)
                    worker.seqs[key] = old.seqs[key]
                    worker.resends[key] = old.resends.get(key, 0)
            out = self.worker_gone(worker_id, now, "it registered again", dispatch=False)
        self.workers[worker_id] = worker
        self._slots_changed(worker)
        return out + self._dispatch(now)

    def heard_from(self, worker_id: str, now: float) -> None:
        worker = self.workers.get(worker_id)
        if worker:
            worker.last_seen = now

    def worker_report(self, worker_id: str, running, finished, known: int, now: float) -> list:
        """A worker's heartbeat listed the attempts it runs (`running`) and those whose result it
        holds until acknowledged (`finished`), each (job, task id, attempt), and the highest TASK
        number it has heard of (`known`). Reconcile with what it was assigned:

        - an attempt assigned to it that it does not list, whose TASK number it has heard of (so
          the TASK is not still on its way), was lost: it is assigned again (same attempt, new
          number); after `task_resends` losses in a row it is counted lost and runs elsewhere;
        - an attempt it lists as running that does not run there as far as the scheduler knows
          (abandoned, its job ended or forgotten, or never assigned) is abandoned on it.
        An unregistered worker's report changes nothing (the coordinator makes it register)."""
        worker = self.workers.get(worker_id)
        if worker is None:
            return []
        worker.last_seen = now
        if worker.full:  # it says what it runs: what it does not want is cancelled below
            worker.full = False
            self._slots_changed(worker)
        running = {tuple(key) for key in running}
        listed = running | {tuple(key) for key in finished}
        out: list = []
        missing = worker.running - listed
        for key in sorted(missing) if missing else ():
            if worker.seqs.get(key, known + 1) > known:
                continue  # its TASK may still be on its way
            job_id, task_id, number = key
            lost = worker.resends.get(key, 0) + 1
            found = self._live_task(job_id, task_id)
            if lost > self.settings.task_resends or found is None:
                self._free_slot(worker_id, job_id, task_id, number)
                error = {
                    "type": "TaskNotDelivered",
                    "traceback": "",
                    "message": f"its TASK message did not reach worker {worker_id} "
                    f"({lost} times): the connection to that worker lost it",
                }
                out += self._attempt_ended(job_id, task_id, number, AttemptState.LOST, error, now)
                continue
            worker.resends[key] = lost
            worker.seqs[key] = self._next_seq(worker_id)
            out.append(Assign(worker_id, job_id, found[1], number, worker.seqs[key]))
        unwanted = running - worker.running
        for job_id, task_id, number in sorted(unwanted, key=str) if unwanted else ():
            out.append(Abandon(worker_id, job_id, task_id, number))
        return out + self._dispatch(now)

    def worker_gone(
        self, worker_id: str, now: float, why: str = "it stopped responding", dispatch=True
    ) -> list:
        worker = self.workers.pop(worker_id, None)
        if worker is None:
            return []
        self._free.pop(worker_id, None)
        out = []
        for job_id, task_id, number in sorted(worker.running):
            error = {
                "type": "WorkerLost",
                "message": f"worker {worker_id} was lost: {why}",
                "traceback": "",
            }
            out += self._attempt_ended(job_id, task_id, number, AttemptState.LOST, error, now)
        return out + self._dispatch(now) if dispatch else out

    def attempt_succeeded(
        self, worker_id: str, job_id: str, task_id: str, number: int, result: dict, now: float
    ) -> list:
        self._free_slot(worker_id, job_id, task_id, number, done=True)
        found = self._live_task(job_id, task_id)
        attempt = found[1].attempt(number) if found else None
        # A late or duplicate report (the task already committed, the attempt was abandoned or its
        # worker declared dead, the job is over) is discarded: exactly one attempt commits.
        if (
            found is None
            or attempt is None
            or attempt.state is not AttemptState.RUNNING
            or found[1].state is not TaskState.RUNNING
        ):
            return self._dispatch(now)
        job, task = found
        attempt.move_to(AttemptState.SUCCEEDED)
        self._move(job, task, TaskState.PUBLISHING)
        job.set_result(task, result)
        job.note_duration(task, now - attempt.started)
        if job.skip_bad_records and job.skipped() > job.max_skipped:
            task.last_error = self._too_many_skipped(job, "malformed records")
            return self._fail_job(job, task) + self._dispatch(now)
        out: list = [PublishTask(job_id, task, number)]
        for other in task.running():
            other.move_to(AttemptState.KILLED)
            out.append(Abandon(other.worker, job_id, task_id, other.number))
            self._free_slot(other.worker, job_id, task_id, other.number)
        # While the phase has tasks pending, the freed slots take them at once (the TASK follows
        # the ACK to the worker, often in the same write). Otherwise they are filled once the
        # publish is done (task_published, publish_failed): this job's next phase may be the
        # next thing to run.
        if job.next_pending() is not None:
            out += self._dispatch(now)
        return out

    def task_published(self, job_id: str, task_id: str, now: float) -> list:
        """The accepted attempt's output is in place; the phase ends when every task's is."""
        found = self._live_task(job_id, task_id)
        if found is None or found[1].state is not TaskState.PUBLISHING:
            return self._dispatch(now)
        job, task = found
        self._move(job, task, TaskState.SUCCEEDED)
        out = []
        if job.phase_done():
            out = self._finish_phase(job, now)
        return out + self._dispatch(now)

    def attempt_failed(
        self,
        worker_id: str,
        job_id: str,
        task_id: str,
        number: int,
        error: dict,
        lost: bool,
        now: float,
    ) -> list:
        self._free_slot(worker_id, job_id, task_id, number)
        state = AttemptState.LOST if lost else AttemptState.FAILED
        return self._attempt_ended(job_id, task_id, number, state, error, now) + self._dispatch(now)

    def attempt_refused(
        self, worker_id: str, job_id: str, task_id: str, number: int, now: float
    ) -> list:
        """The worker had no free slot for this attempt: it never started there, so it is
        withdrawn (KILLED, counted neither failed nor lost) and the task waits or goes elsewhere.
        The worker runs something this scheduler does not know of (its report will say what:
        an attempt nobody wants is cancelled), so it gets no attempt before that report."""
        worker = self.workers.get(worker_id)
        self._free_slot(worker_id, job_id, task_id, number)
        if worker is not None:
            worker.full = True
            self._slots_changed(worker)
        found = self._live_task(job_id, task_id)
        attempt = found[1].attempt(number) if found else None
        if found is not None and attempt is not None and attempt.state is AttemptState.RUNNING:
            job, task = found
            attempt.move_to(AttemptState.KILLED)
            running = task.running()
            if not running:
                self._move(job, task, TaskState.PENDING)
            elif len(running) == 1:
                job.note_attempt(task, running[0])
        return self._dispatch(now)

    def map_output_lost(
        self,
        worker_id: str,
        job_id: str,
        task_id: str,
        number: int,
        map_task_id: str,
        error: dict,
        now: float,
    ) -> list:
        """A reduce attempt could not read a committed map output: the reduce attempt is lost (not
        the user's fault) and the map runs again; reduces wait until it has (MapReduce paper 3.3)."""
        self._free_slot(worker_id, job_id, task_id, number)
        out = self._attempt_ended(job_id, task_id, number, AttemptState.LOST, error, now)
        job = self.jobs.get(job_id)
        source = job.task(map_task_id) if job else None
        if job and job.active and source and source.state is TaskState.SUCCEEDED:
            self._move(job, source, TaskState.PENDING)
            job.set_result(source, None)
            source.last_error = error
            if job.phase is JobPhase.REDUCE:
                job.move_to(JobPhase.MAP)
        return out + self._dispatch(now)

    def publish_failed(self, job_id: str, task_id: str, error: dict, now: float) -> list:
        """The accepted attempt's output could not be put in place: run the task again (a failed
        publish counts as a failed attempt, so one that keeps failing fails the job)."""
        found = self._live_task(job_id, task_id)
        if found is None or found[1].state is not TaskState.PUBLISHING:
            return self._dispatch(now)
        job, task = found
        job.set_result(task, None)
        task.last_error = error
        task.failures += 1
        if task.failures >= job.max_attempts:
            return self._fail_job(job, task) + self._dispatch(now)
        self._move(job, task, TaskState.PENDING)
        return self._dispatch(now)

    def fail_job(self, job_id: str) -> list:
        """The job cannot go on for a reason outside its tasks (its commit failed, the coordinator
        hit an error carrying out one of its instructions): stop its attempts."""
        job = self.jobs.get(job_id)
        if not job or job.ended:
            return []
        out = self._stop_tasks(job)
        job.move_to(JobPhase.FAILED)
        return out

    def replan_task(self, job_id: str, task_id: str, now: float) -> list:
        """Cut a map task into the pieces its job's `cut` gives and put them in its place (what
        a lost attempt does once the task has lost `replan_after_losses`; a coordinator replaying
        its journal calls it directly). Its running attempts are abandoned: the pieces redo
        their work. [] when the task is not running or pending, or cannot be cut."""
        found = self._live_task(job_id, task_id)
        if found is None:
            return []
        out = self._replan(*found)
        return out + self._dispatch(now) if out else []

    def job_committed(self, job_id: str) -> None:
        self.jobs[job_id].move_to(JobPhase.DONE)

    def cancel_job(self, job_id: str) -> list:
        """Stop a job's attempts. Nothing happens to a job that ended or is committing: a commit,
        once started, ends committed or failed (see `cancellable`)."""
        job = self.jobs.get(job_id)
        if not job or not job.active:
            return []
        out = self._stop_tasks(job)
        job.move_to(JobPhase.CANCELLED)
        return out

    def cancellable(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.active

    def forget_job(self, job_id: str) -> None:
        """Drop a finished job's task table (late reports about it are then simply ignored)."""
        job = self.jobs.get(job_id)
        if job is not None and job.ended:
            del self.jobs[job_id]

    def paused(self, seconds: float) -> None:
        """The coordinator itself was stopped for `seconds` (SIGSTOP, a suspended machine): nobody
        was heard because nobody listened. Workers' silence is counted from now, so they are not
        declared dead before what they sent meanwhile has been read."""
        for worker in self.workers.values():
            worker.last_seen += seconds

    def tick(self, now: float) -> list:
        """Time passed: expire silent workers, start backups for stragglers."""
        out = []
        for worker in list(self.workers.values()):
            if now - worker.last_seen > self.settings.expiry:
                out += self.worker_gone(
                    worker.id, now, f"silent for more than {self.settings.expiry:g} s"
                )
        return out + self._dispatch(now)

    # ---- queries --------------------------------------------------------------------------------

    def job_finished(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is None or job.ended

    # ---- internals ------------------------------------------------------------------------------

    def _free_slot(self, worker_id, job_id, task_id, number, done=False) -> None:
        worker = self.workers.get(worker_id)
        if worker and (job_id, task_id, number) in worker.running:
            worker.running.discard((job_id, task_id, number))
            worker.seqs.pop((job_id, task_id, number), None)
            worker.resends.pop((job_id, task_id, number), None)
            worker.tasks_done += done
            self._slots_changed(worker)

    def _slots_changed(self, worker: WorkerState) -> None:
        if worker.free_slots > 0:
            self._free[worker.id] = None
        else:
            self._free.pop(worker.id, None)

    @staticmethod
    def _move(job: JobState, task: Task, new: TaskState) -> None:
        """Every task state change the scheduler makes: checked by the table, then indexed."""
        old = task.state
        task.move_to(new)
        job.note(task, old)

    def _next_seq(self, worker_id: str) -> int:
        self.task_seqs[worker_id] = self.task_seqs.get(worker_id, 0) + 1
        return self.task_seqs[worker_id]

    def _live_task(self, job_id: str, task_id: str) -> tuple[JobState, Task] | None:
        """The job and task a report is about, while the job is active; None for late news (the
        job ended or was forgotten) and for a task id the job does not have."""
        job = self.jobs.get(job_id)
        if job is None or not job.active:
            return None
        task = job.task(task_id)
        return None if task is None else (job, task)

    def _attempt_ended(self, job_id, task_id, number, state, error, now) -> list:
        found = self._live_task(job_id, task_id)
        attempt = found[1].attempt(number) if found else None
        if found is None or attempt is None or attempt.state is not AttemptState.RUNNING:
            return []  # late news about an attempt that no longer matters
        job, task = found
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
                replanned = self._replan(job, task)
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
                    return self._fail_job(job, task)
            if error.get("permanent") is True:
                # An error that repeats whatever the attempt (a mapper yielding a non-pair):
                # another attempt would only fail the same way.
                return self._fail_job(job, task)
        if task.failures >= job.max_attempts or task.losses >= job.max_losses:
            return self._fail_job(job, task)
        running = task.running()
        if not running:
            self._move(job, task, TaskState.PENDING)
        elif len(running) == 1:
            job.note_attempt(task, running[0])  # a backup ended: the other runs alone again
        return []

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

    def _replan(self, job: JobState, task: Task) -> list:
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
            self._free_slot(other.worker, job.id, task.id, other.number)
        self._move(job, task, TaskState.REPLANNED)
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

    def _fail_job(self, job: JobState, task: Task) -> list:
        out = self._stop_tasks(job, failed_task=task)
        job.move_to(JobPhase.FAILED)
        return out + [FailJob(job.id, task)]

    def _stop_tasks(self, job: JobState, failed_task: Task | None = None) -> list:
        out = []
        for task in job.all_tasks():
            for attempt in task.running():
                attempt.move_to(AttemptState.KILLED)
                out.append(Abandon(attempt.worker, job.id, task.id, attempt.number))
                self._free_slot(attempt.worker, job.id, task.id, attempt.number)
            if failed_task is not None and task is failed_task:
                self._move(job, failed_task, TaskState.FAILED)
            elif task.state in (TaskState.PENDING, TaskState.RUNNING, TaskState.PUBLISHING):
                self._move(job, task, TaskState.CANCELLED)
        return out

    def _finish_phase(self, job: JobState, now: float) -> list:
        if job.phase is JobPhase.MAP and not job.map_only:
            job.move_to(JobPhase.REDUCE)
            return []
        job.move_to(JobPhase.COMMIT)
        return [CommitJob(job.id)]

    def _dispatch(self, now: float) -> list:
        """Fill free worker slots: pending tasks first (jobs in submission order), then backups.
        Costs nothing much when every slot is taken or nothing is left to hand out."""
        if not self._free:
            return []
        # Computed once, when no task is pending any more (nothing else changes meanwhile).
        backups = None if self._next_pending() is not None else self._backups(now)
        if backups is not None and not backups:
            return []
        out: list = []
        workers = sorted(
            (self.workers[w] for w in self._free), key=lambda w: (len(w.running), w.id)
        )
        for worker in workers:
            while worker.free_slots > 0:
                found = self._next_pending()
                backup = found is None
                if found is None:
                    if backups is None:
                        backups = self._backups(now)
                    if not backups:
                        return out  # nothing left for any worker
                    found = _take_backup(backups, worker.id)
                    if found is None:
                        break  # the candidates run on this worker
                job, task = found
                old = task.state
                attempt = task.start_attempt(worker.id, now, backup)
                job.note(task, old)
                job.note_attempt(task, attempt)
                job.attempt_counts["attempts"] += 1
                job.attempt_counts["backups"] += backup
                key = (job.id, task.id, attempt.number)
                worker.running.add(key)
                worker.seqs[key] = self._next_seq(worker.id)
                out.append(Assign(worker.id, job.id, task, attempt.number, worker.seqs[key]))
                self._slots_changed(worker)
        return out

    def _next_pending(self) -> tuple[JobState, Task] | None:
        for job in self.jobs.values():
            if job.active:
                task = job.next_pending()
                if task is not None:
                    return job, task
        return None

    def _backups(self, now: float) -> list:
        """[(job, task)] for every straggler, jobs in submission order, each job's longest
        running first: the order in which idle workers take them."""
        return [
            (job, task)
            for job in self.jobs.values()
            if job.active
            for task in self._stragglers(job, now)
        ]

    def _stragglers(self, job: JobState, now: float) -> list:
        """Near the end of a phase (nothing pending), an attempt that has run far longer than
        expected gets one backup attempt on an idle worker (MapReduce paper 3.6); the longest
        running first (ties in phase order).

        Expected is the median of the finished peers' durations; for a reduce task, at least its
        input bytes (the map results give each partition's) at the seconds per byte its finished
        peers took, or, when their inputs were too small to tell (an empty partition ends at
        once), at the seconds per byte of map output the map tasks took. Backups are for slow
        machines: a reduce holding a giant key is slow because of its input, and a second
        attempt of it would only double its cost.

        Only the attempts older than the least threshold (the median's) are looked at: the
        running attempts are kept oldest first."""
        settings = self.settings
        kind = "map" if job.phase is JobPhase.MAP else "reduce"
        typical = job.typical(kind)
        if typical is None:
            typical = settings.backup_min_runtime
        least = max(settings.backup_min_runtime, settings.backup_slowdown * typical)
        heap = job.started[kind]
        sizes: dict | None = None
        per_byte = 0.0
        looked: list = []
        seen: set = set()
        candidates = []
        while heap:
            started, _, task, attempt = heap[0]
            if id(attempt) in seen or not _runs_alone(task, attempt):
                heapq.heappop(heap)  # it ended, or a backup runs beside it
                continue
            age = now - started
            if age <= least:
                break
            looked.append(heapq.heappop(heap))
            seen.add(id(attempt))
            if sizes is None:
                sizes = (
                    job.memo("sizes", lambda: _reduce_input_bytes(job)) if kind == "reduce" else {}
                )
                per_byte = self._per_byte(job, sizes) if sizes else 0.0
            expected = max(typical, per_byte * sizes.get(task.index, 0))
            threshold = max(settings.backup_min_runtime, settings.backup_slowdown * expected)
            if age > threshold:
                candidates.append((age, task))
        for entry in looked:
            heapq.heappush(heap, entry)
        candidates.sort(key=lambda c: (-c[0], c[1].index, c[1].piece))
        return [task for _, task in candidates]


def _take_backup(backups: list, worker_id: str) -> tuple[JobState, Task] | None:
    """The first straggler whose attempt runs on another worker, taken off the list."""
    for i, (job, task) in enumerate(backups):
        if task.running()[0].worker != worker_id:
            del backups[i]
            return job, task
    return None
