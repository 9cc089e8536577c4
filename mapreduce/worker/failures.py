"""What a failed attempt reports: the cause in one line and the user's own traceback.

The report is a small JSON-able dict (type, message, traceback) that goes back to the coordinator,
which shows it to the user if the task fails for good. Frames of the framework are left out of the
traceback (unless none are the user's: then it is a framework bug and every frame is shown), and
frames of a shipped job module get their file name and source line back.
"""

from __future__ import annotations

import os
import traceback

import mapreduce
from mapreduce import shuffle
from mapreduce.errors import RecordError
from mapreduce.jobspec import Job
from mapreduce.streaming import StreamingCommandError

_FRAMEWORK_DIR = os.path.dirname(os.path.abspath(mapreduce.__file__)) + os.sep


class TaskError(Exception):
    """An attempt failed; `report` is what goes back to the coordinator."""

    def __init__(self, report: dict):
        super().__init__(report.get("message", ""))
        self.report = report


def failure_report(exc: Exception, job: Job, location: str = "") -> dict:
    """What the coordinator is told about a failed attempt (and shows the user if it is the last)."""
    where = f" ({location})" if location else ""
    if isinstance(exc, shuffle.ShuffleReadError):
        return {"type": "ShuffleReadError", "message": str(exc), "traceback": "", "input": exc.path}
    if isinstance(exc, StreamingCommandError):
        # A command's failure: its stderr's tail is in the message; no Python traceback helps.
        return {"type": "StreamingCommandError", "message": f"{exc}{where}", "traceback": ""}
    if isinstance(exc, RecordError):
        # The framework noticed the mistake: show where in the user's code, if anywhere.
        # Permanent: the same records give the same output in any attempt, so the task fails
        # at once instead of after --max-attempts (the scheduler reads "permanent").
        return {
            "type": "RecordError",
            "message": f"{exc}{where}",
            "traceback": user_traceback(exc, job, user_frames_only=True),
            "permanent": True,
        }
    report = describe_exception(exc, job)
    report["message"] += where
    return report


def describe_exception(exc: BaseException, job: Job | None = None) -> dict:
    return {
        "type": type(exc).__name__,
        "message": f"{type(exc).__name__}: {exc}",
        "traceback": user_traceback(exc, job),
    }


def user_traceback(
    exc: BaseException, job: Job | None = None, user_frames_only: bool = False
) -> str:
    """The traceback as the user wants it: their own frames only (all frames if none are theirs,
    since then it is a framework bug, unless user_frames_only)."""
    frames = [_with_job_source(f, job) for f in traceback.extract_tb(exc.__traceback__)]
    mine = [f for f in frames if _is_user_frame(f)]
    if not mine and user_frames_only:
        return ""
    lines = [
        "Traceback (most recent call last):\n",
        *traceback.format_list(mine or frames),
        *traceback.format_exception_only(type(exc), exc),
    ]
    return "".join(lines)


def _is_user_frame(frame: traceback.FrameSummary) -> bool:
    return not os.path.abspath(frame.filename).startswith(_FRAMEWORK_DIR)


def _with_job_source(frame: traceback.FrameSummary, job: Job | None) -> traceback.FrameSummary:
    """Give a frame of the shipped job module back its file name and source line."""
    if frame.filename != "<dynamic-code>" or job is None or not job.source or not frame.lineno:
        return frame
    lines = job.source.splitlines()
    line = lines[frame.lineno - 1] if frame.lineno <= len(lines) else None
    return traceback.FrameSummary(
        job.source_path or frame.filename, frame.lineno, frame.name, line=line
    )
