"""Output commit: every atomic write, task publication and job commit goes through here.

Protocol (the MapReduce paper's, as Hadoop's FileOutputCommitter does it):
- a task attempt writes only under its own temporary name (`_attempts/<task>-a<N>/` in the job's
  staging directory);
- once the coordinator accepts an attempt as the one that commits, `publish_attempt` renames its
  files into the staging directory; a late or duplicate attempt's files are never published;
- when the whole job has succeeded, `commit_job` writes the empty `_SUCCESS` into staging and swaps
  staging in as the output directory, so readers see either the old state or the complete result;
- a failed or cancelled job's staging is removed and the output directory is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid

from .errors import OutputError

ATTEMPTS_DIR = "_attempts"
LOGS_DIR = "_logs"          # what task attempts printed; kept in the output, like Hadoop's _logs
SUCCESS = "_SUCCESS"


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "wb", **open_args):
    """Open a temporary sibling of `path`; on success rename it over `path`, on error delete it."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, mode, **open_args) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuse an output directory that exists and is not empty, unless overwrite (decided up front,
    before anything runs, so a refused job changes nothing)."""
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise OutputError(f"output path '{output_dir}' exists and is not a directory; choose another "
                          f"--output path.")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise OutputError(f"output directory '{output_dir}' already exists and is not empty; its "
                          f"files were left untouched. Choose another --output, or pass --overwrite "
                          f"to replace it once the new result is complete.")
    parent = os.path.dirname(os.path.abspath(output_dir))
    existing = parent
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create output directory '{output_dir}': '{existing}' is not "
                          f"writable.")


def staging_dir_for(output_dir: str, job_id: str) -> str:
    """A hidden sibling of the output directory: the same filesystem, so commit is a rename."""
    absolute = os.path.abspath(output_dir.rstrip("/") or "/")
    parent, name = os.path.split(absolute)
    return os.path.join(parent, f".{name}.mapreduce-{job_id}")


def create_staging(staging: str) -> None:
    os.makedirs(os.path.join(staging, ATTEMPTS_DIR))


def attempt_dir(staging: str, task_id: str, attempt: int) -> str:
    return os.path.join(staging, ATTEMPTS_DIR, f"{task_id}-a{attempt}")


def publish_attempt(staging: str, task_id: str, attempt: int) -> None:
    """Move the committing attempt's part files into staging (each rename is atomic)."""
    source = attempt_dir(staging, task_id, attempt)
    for name in sorted(os.listdir(source)):
        os.replace(os.path.join(source, name), os.path.join(staging, name))
    os.rmdir(source)


def commit_job(staging: str, output_dir: str) -> None:
    """Write `_SUCCESS` last, then swap staging in as the output directory."""
    shutil.rmtree(os.path.join(staging, ATTEMPTS_DIR), ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(staging, LOGS_DIR))       # only when no attempt printed anything
    with atomic_file(os.path.join(staging, SUCCESS)):
        pass
    if os.path.isdir(output_dir):
        # --overwrite (or an empty directory): the old result stays whole until this moment, and
        # on Linux the swap itself is one atomic step, so no reader ever finds the directory gone.
        if not _exchange(staging, output_dir):
            retired = staging + ".old"
            os.rename(output_dir, retired)
            os.rename(staging, output_dir)
            staging = retired
        shutil.rmtree(staging, ignore_errors=True)        # now holds the old result
    else:
        os.rename(staging, output_dir)


def _exchange(first: str, second: str) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return result == 0


def abort_job(staging: str) -> None:
    shutil.rmtree(staging, ignore_errors=True)
