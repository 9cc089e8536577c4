"""The scheduler's instructions: what it tells the coordinator to do.

Every event the `Scheduler` is fed returns a list of these, in the order they are to be carried
out: send an attempt to a worker (`Assign`) or take it back (`Abandon`), make an attempt's output
the task's (`PublishTask`), record that a map task was cut into smaller ones (`ReplanTask`), commit
or fail a job (`CommitJob`, `FailJob`). Plain frozen data: they do nothing themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tasks import Task


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
