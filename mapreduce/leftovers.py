"""Directories a killed process left behind, and how the next run recognises and removes them.

A `run` or coordinator that exits normally removes its temporary directories (the shuffle files in
`mapreduce-run-*`, a job's hidden staging directory beside its output). One killed with SIGKILL,
or by a power cut, cannot: its shuffle files can be gigabytes. So each such directory gets an
owner file naming the host, the process id and that process's start time, and the next run that
would create one of its kind first removes those whose owner is gone. A directory whose owner
may still be alive (another host, an unreadable owner file, a live process) is never touched.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket

OWNER_FILE = ".mapreduce-owner"


def mark_owned(directory: str) -> None:
    """Record that this process owns `directory` (which it has just created)."""
    with open(os.path.join(directory, OWNER_FILE), "w") as handle:
        json.dump(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": _process_start(os.getpid()),
            },
            handle,
        )


def remove_abandoned(pattern: str, owner_subdir: str = "") -> list[str]:
    """Remove the directories matching `pattern` whose owner file (in `owner_subdir` of each)
    names a process of this host that is no longer running; returns what was removed."""
    removed = []
    for directory in glob.glob(pattern):
        if _abandoned(os.path.join(directory, owner_subdir, OWNER_FILE)):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def _abandoned(owner_file: str) -> bool:
    try:
        with open(owner_file) as handle:
            owner = json.load(handle)
        pid, host, started = int(owner["pid"]), owner["host"], owner.get("started")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    if not _running(pid):
        return True
    # The id may have been reused by another process since: then the owner is gone too.
    return started is not None and _process_start(pid) not in (None, started)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def owned_temp_dir(prefix: str) -> str:
    """A new private temporary directory (like tempfile.mkdtemp) marked as this process's, after
    removing those of the same prefix that killed processes left behind."""
    import tempfile

    remove_abandoned(os.path.join(glob.escape(tempfile.gettempdir()), glob.escape(prefix) + "*"))
    directory = tempfile.mkdtemp(prefix=prefix)
    mark_owned(directory)
    return directory
