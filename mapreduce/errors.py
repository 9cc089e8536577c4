"""The few exception classes of the framework.

Every error a user can cause derives from MapReduceError, whose `paragraph()` is what the CLI prints:
what failed, where, why and what to do, as one readable paragraph (plus the user's own traceback
where there is one) instead of a framework traceback.
"""

from __future__ import annotations


class MapReduceError(Exception):
    """An error reported to the user as one paragraph; the CLI exits non-zero with it."""

    exit_code = 1

    def paragraph(self) -> str:
        return str(self)


class InputError(MapReduceError):
    """An input path is missing, unreadable, or a glob matched nothing."""


class JobLoadError(MapReduceError):
    """The job module cannot be found, does not compile, or lacks a mapper."""


class OutputError(MapReduceError):
    """The output directory cannot be used (exists and is not empty, not writable...)."""


class ProtocolError(MapReduceError):
    """A peer spoke another protocol version or sent a message that does not parse."""


class RecordError(Exception):
    """User code produced something the framework cannot carry: not a (key, value) pair, a value
    that cannot be pickled, a partition number out of range, keys that cannot be ordered.

    Raised inside a task; it fails the attempt like a user exception does. `records_ago` says
    how many records before the last one mapped the offending one was (output is checked in
    chunks, so it can be a few records back)."""

    records_ago: int = 0


class TaskFailedError(MapReduceError):
    """A task failed all its attempts (or lost too many to dying workers); the job fails with it."""

    def __init__(
        self,
        kind: str,
        index: int,
        where: str,
        attempts: int,
        cause: str,
        user_traceback: str = "",
        lost: bool = False,
        log_tail: str = "",
    ):
        self.kind, self.index, self.where = kind, index, where
        self.attempts, self.cause, self.user_traceback, self.lost = (
            attempts,
            cause,
            user_traceback,
            lost,
        )
        self.log_tail = log_tail
        super().__init__(self.paragraph())

    def paragraph(self) -> str:
        task = f"{self.kind} task {self.index} ({self.where})"
        if self.lost:
            head = (
                f"{task} failed: its worker process died {self.attempts} times while running it, "
                f"so the job was stopped. The job's code probably exits or crashes the process "
                f"(os._exit, a segfault, running out of memory) for this input. Last: {self.cause}"
            )
        else:
            head = (
                f"{task} failed {self.attempts} time(s), the last attempt with: {self.cause}. "
                f"No output was written."
            )
        if self.log_tail.strip():
            head += "\n\nWhat the last attempt printed (end of its log):\n" + self.log_tail.rstrip()
        if self.user_traceback:
            return head + "\n\n" + self.user_traceback.rstrip()
        return head


class JobCancelledError(MapReduceError):
    """The job was cancelled (Ctrl-C, SIGTERM, or a client's cancel request)."""

    exit_code = 130
