"""An attempt's log: what its code prints, captured at the file descriptors, and its upload.

Descriptors 1 and 2 are redirected (not just sys.stdout), so C extensions' output and log records
land in the attempt's log too, never on the terminal's progress line. A log under an object-store
URI is captured in a local file and uploaded when the attempt ends; an empty log is not kept.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from mapreduce import storage


@contextlib.contextmanager
def captured_output(path: str | None):
    """The attempt's prints and log records (file descriptors 1 and 2, so C extensions' output
    too) go to its log file, not the terminal's progress line. Empty logs are removed."""
    if not path:
        yield
        return
    if storage.is_uri(path):  # fd redirection needs a local file
        with _captured_then_uploaded(path):
            yield
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        if os.path.getsize(path) == 0:
            os.unlink(path)


@contextlib.contextmanager
def _captured_then_uploaded(location: str):
    """A log under a URI: fd redirection needs a local file, so capture locally and upload the
    log (when anything was printed) at the end of the attempt."""
    handle, local = tempfile.mkstemp(prefix="mapreduce-log-", suffix=".log")
    os.close(handle)
    try:
        with captured_output(local):
            yield
    finally:
        if os.path.exists(local):
            try:
                with storage.atomic_write(location, source=local):
                    pass
            except Exception as exc:  # a log must not fail the attempt it describes
                print(f"could not upload the task log to {location}: {exc}", file=sys.stderr)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(local)


def log_tail(path: str | None, limit: int = 2000) -> str:
    """The end of an attempt's log, for the failure message."""
    if not path:
        return ""
    try:
        return storage.read_tail(path, limit).decode("utf-8", "replace")
    except Exception:
        return ""
