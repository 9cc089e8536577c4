"""The scheduling core: events in, instructions out, no I/O.

The coordinator's socket loop feeds the `Scheduler` what happened (a worker registered, an
attempt finished or failed, time passed) and carries out what it returns (send this task to that
worker, abandon that attempt, publish a task's output, commit or fail a job). Time is always
passed in as `now`, so every timeout decision can be tested in microseconds without sockets or
sleeps.

This module is the core's public face: the names the coordinator, the runners and tests use.
The parts live in `mapreduce.scheduling`, one concern per module (see its docstring).
"""

from __future__ import annotations

from .scheduling.instructions import (
    Abandon,
    Assign,
    CommitJob,
    FailJob,
    PublishTask,
    ReplanTask,
)
from .scheduling.jobstate import JobState
from .scheduling.scheduler import Scheduler, WorkerState
from .scheduling.settings import SchedulerSettings

__all__ = [
    "Abandon",
    "Assign",
    "CommitJob",
    "FailJob",
    "JobState",
    "PublishTask",
    "ReplanTask",
    "Scheduler",
    "SchedulerSettings",
    "WorkerState",
]
