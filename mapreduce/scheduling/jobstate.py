"""A job's task table and the indexes kept in step with it, as the scheduler sees the job.

`JobState` holds a job's map and reduce tasks, its phase, and indexes that let no event scan the
tasks (the pending tasks in phase order, the running attempts oldest first, the finished
durations' median, the counts progress reports read). It records what happened and answers
questions about it; the decisions taken on it are the `JobEngine`'s (engine.py). No I/O.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable

from .. import defaults
from ..tasks import (
    ENDED_PHASES,
    JOB_TRANSITIONS,
    Attempt,
    AttemptState,
    IllegalTransition,
    JobPhase,
    Task,
    TaskState,
)


@dataclass
class JobState:
    id: str
    map_tasks: list
    reduce_tasks: list
    max_attempts: int
    max_losses: int
    phase: JobPhase = JobPhase.MAP  # changed only by move_to, by the scheduling core
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

    def move(self, task: Task, new: TaskState) -> None:
        """Every task state change the scheduling core makes: checked by the table, then
        indexed."""
        old = task.state
        task.move_to(new)
        self.note(task, old)

    def start_attempt(self, task: Task, worker_id: str, now: float, backup: bool) -> Attempt:
        """Start an attempt of `task` (a backup when it runs already) on that worker, indexed
        and counted."""
        old = task.state
        attempt = task.start_attempt(worker_id, now, backup)
        self.note(task, old)
        self.note_attempt(task, attempt)
        self.attempt_counts["attempts"] += 1
        self.attempt_counts["backups"] += backup
        return attempt

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
        while heap and not runs_alone(heap[0][2], heap[0][3]):
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


def runs_alone(task: Task, attempt: Attempt) -> bool:
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


def new_job(
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
