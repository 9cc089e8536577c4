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
    """A task failed all its attempts (or lost too many to dying workers); the job fails with it.

    For lost attempts, `deaths` of the `attempts` lost were the process running them dying (the
    rest: the connection to the worker), and `last_exit` says how it ended the last time
    ({"status": 3} or {"signal": "SIGKILL"})."""

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
        *,
        deaths: int | None = None,
        last_exit: dict | None = None,
        piece: str = "",
        permanent: bool = False,
    ):
        self.kind, self.index, self.where = kind, index, where
        self.attempts, self.cause, self.user_traceback, self.lost = (
            attempts,
            cause,
            user_traceback,
            lost,
        )
        self.log_tail = log_tail
        self.deaths = attempts if deaths is None else deaths
        self.last_exit = last_exit
        self.piece = piece  # "2.0" for a piece of a re-planned map task, else ""
        self.permanent = permanent  # failed with a mistake that repeats: not retried
        super().__init__(self.paragraph())

    def paragraph(self) -> str:
        task = f"{self.kind} task {self.index}" + (f", piece {self.piece}" if self.piece else "")
        task += f" ({self.where})"
        if self.lost:
            head = f"{task} failed: {self._losses()}, so the job was stopped. {self._advice()}"
        else:
            head = (
                f"{task} failed {self.attempts} time(s), the last attempt with: {self.cause}. "
                f"No output was written"
                + (
                    " (the task was not retried: this mistake repeats in every attempt)."
                    if self.permanent
                    else "."
                )
            )
        if self.log_tail.strip():
            head += "\n\nWhat the last attempt printed (end of its log):\n" + self.log_tail.rstrip()
        if self.user_traceback:
            return head + "\n\n" + self.user_traceback.rstrip()
        return head

    def _losses(self) -> str:
        died = self._last_death()
        connections = self.attempts - self.deaths
        if connections <= 0:
            return f"the process running it died {self.attempts} times (the last time it {died})"
        if self.deaths <= 0:
            return (
                f"{self.attempts} of its attempts were lost with the connection to their "
                f"worker (the last: {self.cause})"
            )
        return (
            f"{self.attempts} of its attempts were lost: the process running it died "
            f"{self.deaths} time(s) (the last time it {died}), and the connection to its "
            f"worker was lost {connections} time(s) (the last: {self.cause})"
        )

    def _last_death(self) -> str:
        exit = self.last_exit or {}
        if exit.get("signal"):
            return f"was killed by signal {exit['signal']}"
        if "status" in exit:
            return f"exited with status {exit['status']}"
        return self.cause

    def _advice(self) -> str:
        if self.deaths * 2 >= self.attempts:
            oom = (
                " (SIGKILL is also what the kernel's out-of-memory killer sends)"
                if (self.last_exit or {}).get("signal") == "SIGKILL"
                else ""
            )
            piece = (
                " The task was already cut into pieces as small as its input allows."
                if self.piece
                else ""
            )
            return (
                f"The job's code probably ends or crashes the process for this input: "
                f"os._exit, a signal it sends itself, a segfault in a C extension, or "
                f"running out of memory{oom}.{piece} Run the job on that input with "
                f"`mapreduce run --inline` to see where it stops (a traceback or pdb)."
            )
        return (
            "This is not the job's code: check that the workers stay up and can reach the "
            "coordinator (their logs, the network, a firewall between them), and raise "
            "--heartbeat-interval or --liveness if they are only slow to answer."
        )


class TooManySkippedError(TaskFailedError):
    """--skip-bad-records would skip more records than --max-skipped allows; `cause` says how
    many and which was the last."""

    def paragraph(self) -> str:
        task = f"{self.kind} task {self.index}" + (f", piece {self.piece}" if self.piece else "")
        return f"the job was stopped at {task} ({self.where}): {self.cause}. No output was written."


class JobCancelledError(MapReduceError):
    """The job was cancelled (Ctrl-C, SIGTERM, or a client's cancel request)."""

    exit_code = 130


def interrupted(signal_name: str, output_dir: str, committed: bool) -> JobCancelledError:
    """What `run` or `submit` says when SIGINT or SIGTERM stopped it: whether the output was
    committed (the signal came during the final commit, which finishes first) or not."""
    if committed:
        error = JobCancelledError(
            f"{signal_name} arrived as the job was committing; the commit "
            f"finished first: '{output_dir}' holds the job's complete output "
            f"(with _SUCCESS)."
        )
    else:
        error = JobCancelledError(
            f"{signal_name}: the job was cancelled and no output was "
            f"committed; '{output_dir}' is as it was before the job."
        )
    error.exit_code = 143 if signal_name == "terminated (SIGTERM)" else 130
    return error
