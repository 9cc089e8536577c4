"""Whether this worker reaches the paths a task names: its input files, its output directory.

A worker that cannot read an input or write the work directory fails the attempt with a message
naming its host and what every worker needs (the same paths, or the storage settings), rather
than with whatever the first read or write would have raised.
"""

from __future__ import annotations

import socket

from mapreduce import storage
from mapreduce.worker.failures import TaskError


def check_readable(path: str) -> None:
    """Raise TaskError when this worker cannot read the input `path` (a local path or a URI)."""
    if not storage.readable(path):
        raise TaskError(_unreachable("cannot read the input file", path))
    try:
        cause = None if storage.exists(path) else "it does not exist"
    except Exception as exc:
        cause = storage.describe_error(path, "read", exc).paragraph()
    if cause:
        raise TaskError(
            {
                "type": "Unreachable",
                "traceback": "",
                "message": f"worker on host {socket.gethostname()} cannot read the input "
                f"'{path}' ({cause}); every worker needs the storage settings "
                f"the job was submitted with (AWS_* credentials, "
                f"AWS_ENDPOINT_URL)",
            }
        )


def make_output_dir(path: str) -> None:
    """Create the attempt's output directory, or raise TaskError saying this worker cannot."""
    try:
        storage.make_dirs(path)
    except Exception as exc:
        raise TaskError(
            _unreachable(f"cannot write ({getattr(exc, 'strerror', None) or exc})", path)
        ) from None


def _unreachable(problem: str, path: str) -> dict:
    return {
        "type": "Unreachable",
        "traceback": "",
        "message": f"worker on host {socket.gethostname()} {problem} '{path}': input, work "
        f"and output directories must be reachable at the same path from every "
        f"worker (one machine, or a shared filesystem)",
    }
