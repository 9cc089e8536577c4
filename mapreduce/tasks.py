"""The task state machine: the states of tasks and attempts, and every legal transition.

Nothing outside this module assigns a state: `Task.move_to` and `Attempt.move_to` check each change
against the tables below, so an impossible transition is a loud bug, not a silent corruption.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class TaskState(str, Enum):
    PENDING = "pending"  # waiting for a free worker slot
    RUNNING = "running"  # at least one attempt in flight (two when a backup runs)
    PUBLISHING = "publishing"  # one attempt was accepted; its output is being put in place
    SUCCEEDED = "succeeded"  # exactly one attempt committed its output, and it is in place
    FAILED = "failed"  # out of attempts: the job fails
    CANCELLED = "cancelled"  # the job ended (failed or cancelled) before this task finished
    # Cut into smaller tasks (its pieces), which took its place: it kept losing its process.
    REPLANNED = "replanned"


class AttemptState(str, Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the committing attempt
    FAILED = "failed"  # user code raised: counts against max attempts
    LOST = "lost"  # its worker died or went silent: counted apart, as Hadoop's killed attempts
    KILLED = "killed"  # abandoned: another attempt won, or the job ended


TASK_TRANSITIONS = {
    TaskState.PENDING: {TaskState.RUNNING, TaskState.CANCELLED, TaskState.REPLANNED},
    TaskState.RUNNING: {
        TaskState.PUBLISHING,
        TaskState.PENDING,
        TaskState.FAILED,
        TaskState.CANCELLED,
        TaskState.REPLANNED,
    },
    # Publishing can fail (a full disk, an S3 copy): the task runs again, or the job fails.
    TaskState.PUBLISHING: {
        TaskState.SUCCEEDED,
        TaskState.PENDING,
        TaskState.FAILED,
        TaskState.CANCELLED,
    },
    # A committed map output can still vanish before every reducer read it: run again.
    TaskState.SUCCEEDED: {TaskState.PENDING},
    TaskState.FAILED: set(),
    TaskState.CANCELLED: set(),
    TaskState.REPLANNED: set(),  # its pieces carry on; it never runs again
}

ATTEMPT_TRANSITIONS = {
    AttemptState.RUNNING: {
        AttemptState.SUCCEEDED,
        AttemptState.FAILED,
        AttemptState.LOST,
        AttemptState.KILLED,
    },
    AttemptState.SUCCEEDED: set(),
    AttemptState.FAILED: set(),
    AttemptState.LOST: set(),
    AttemptState.KILLED: set(),
}


class JobPhase(str, Enum):
    MAP = "map"  # map tasks run
    REDUCE = "reduce"  # every map output is in place; reduce tasks run
    COMMIT = "commit"  # every task's output is in place; the job's output is being committed
    DONE = "done"  # committed
    FAILED = "failed"  # a task ran out of attempts, or the commit failed
    CANCELLED = "cancelled"  # a client cancelled it, or the coordinator stopped


ENDED_PHASES = frozenset({JobPhase.DONE, JobPhase.FAILED, JobPhase.CANCELLED})

JOB_TRANSITIONS = {
    JobPhase.MAP: {JobPhase.REDUCE, JobPhase.COMMIT, JobPhase.FAILED, JobPhase.CANCELLED},
    # A committed map output a reducer cannot read sends the job back to the map phase.
    JobPhase.REDUCE: {JobPhase.MAP, JobPhase.COMMIT, JobPhase.FAILED, JobPhase.CANCELLED},
    # A commit is not cut short by a cancel: it ends committed or failed.
    JobPhase.COMMIT: {JobPhase.DONE, JobPhase.FAILED},
    JobPhase.DONE: set(),
    JobPhase.FAILED: set(),
    JobPhase.CANCELLED: set(),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(slots=True)
class Attempt:
    number: int
    worker: str
    started: float
    backup: bool = False
    state: AttemptState = AttemptState.RUNNING

    def move_to(self, new: AttemptState) -> None:
        if new not in ATTEMPT_TRANSITIONS[self.state]:
            raise IllegalTransition(f"attempt {self.number}: {self.state.value} -> {new.value}")
        self.state = new


@dataclass(slots=True)
class Task:
    kind: str  # "map" or "reduce"
    index: int  # a map task's piece keeps the index of the task it was cut from (its part)
    where: str  # for messages: the split's description, or "partition N"
    # A map task's input as the coordinator sends it (Split.to_wire()); None: the submission's.
    split: dict | None = None
    # Where a re-planned map task's piece lies: (2,) is the third piece of the task `index`,
    # (2, 0) the first piece of that one. () for a task as planned.
    piece: tuple = ()
    state: TaskState = TaskState.PENDING
    attempts: list = field(default_factory=list)
    failures: int = 0  # attempts whose user code failed
    losses: int = 0  # attempts lost with their worker
    deaths: int = 0  # ...of which the process running the attempt died (not a lost connection)
    last_exit: dict | None = None  # how it ended the last time: {"status": 3}, {"signal": ...}
    last_error: dict | None = None
    result: dict | None = None  # the committed attempt's report (output files, counters)
    # --skip-bad-records: failed attempts per record their code raised on (a map record's
    # ordinal in the split, a reduce key's bytes in hex), and the records to skip: id -> where.
    record_failures: dict = field(default_factory=dict)
    skip: dict = field(default_factory=dict)
    duration: float | None = None
    # "map-00007", "map-00007.2.0" for a piece: made once (the scheduler looks tasks up by it).
    id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.id = f"{self.kind}-{self.index:05d}" + "".join(f".{n}" for n in self.piece)

    def move_to(self, new: TaskState) -> None:
        if new not in TASK_TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.id}: {self.state.value} -> {new.value}")
        self.state = new

    def running(self) -> list:
        return [a for a in self.attempts if a.state is AttemptState.RUNNING]

    def attempt(self, number: int) -> Attempt | None:
        if 1 <= number <= len(self.attempts):
            return self.attempts[number - 1]
        return None

    def restore(self, attempts_started: int, now: float, result: dict | None) -> None:
        """Replay of the coordinator's journal, on a new task: the attempts started before the
        restart are over (KILLED: their numbers are not used again), and a task whose output was
        published is SUCCEEDED with that result."""
        assert self.state is TaskState.PENDING and not self.attempts
        self.attempts = [
            Attempt(number, "", now, state=AttemptState.KILLED)
            for number in range(1, attempts_started + 1)
        ]
        if result is not None:
            self.state, self.result = TaskState.SUCCEEDED, result

    def start_attempt(self, worker: str, now: float, backup: bool = False) -> Attempt:
        attempt = Attempt(len(self.attempts) + 1, worker, now, backup)
        self.attempts.append(attempt)
        if self.state is TaskState.PENDING:
            self.move_to(TaskState.RUNNING)
        return attempt
