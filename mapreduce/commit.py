"""Output commit: every atomic write, task publication and job commit goes through here.

Protocol (the MapReduce paper's, as Hadoop's FileOutputCommitter does it):
- a task attempt writes only under its own temporary name (`_attempts/<task>-a<N>/` in the job's
  staging directory);
- once the coordinator accepts an attempt as the one that commits, `publish_attempt` renames its
  files into the staging directory; a late or duplicate attempt's files are never published;
- when the whole job has succeeded, `commit_job` has the parts finished for their format (Parquet
  parts are given one schema), writes the empty `_SUCCESS` into staging and swaps staging in as
  the output directory, so readers see either the old state or the complete result;
- a failed or cancelled job's staging is removed and the output directory is never touched.

On an object store (an output URI such as s3://bucket/out) there is no atomic rename, so the same
steps are done object by object: staging is the hidden sibling prefix `.NAME.mapreduce-<job>/`,
publishing moves (copies) the attempt's objects within it, and commit_job moves the parts into
the output and writes `_SUCCESS` last; with --overwrite the old `_SUCCESS` goes first, then the
old objects. Readers must therefore wait for `_SUCCESS`, as with Hadoop or Spark on S3.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import uuid

from . import leftovers, storage
from .errors import MapReduceError, OutputError

ATTEMPTS_DIR = "_attempts"
LOGS_DIR = "_logs"          # what task attempts printed; kept in the output, like Hadoop's _logs
SUCCESS = "_SUCCESS"


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "wb", **open_args):
    """Open a temporary sibling of `path`; on success rename it over `path`, on error delete it."""
    if storage.is_uri(path):
        with _object_file(path, mode, **open_args) as handle:
            yield handle
        return
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


@contextlib.contextmanager
def _object_file(location: str, mode: str, **open_args):
    """atomic_file for a URI: the object appears only when the stream is closed; after an error
    the (partial) object is deleted. Attempts write only under their own prefix, so a partial
    object is never where a reader looks."""
    import io
    stream = storage.open_output_stream(location)
    handle = stream if "b" in mode else io.TextIOWrapper(stream, **open_args)
    try:
        yield handle
    except BaseException:
        with contextlib.suppress(Exception):
            handle.close()
            storage.delete_file(location)
        raise
    handle.close()


def check_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuse an output directory that exists and is not empty, unless overwrite (decided up front,
    before anything runs, so a refused job changes nothing)."""
    if storage.is_uri(output_dir):
        _check_output_location(output_dir, overwrite)
        return
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


def _check_output_location(output: str, overwrite: bool) -> None:
    from pyarrow.fs import FileType
    if not storage.split(output)[1]:
        raise OutputError(f"output '{output}' is a bucket or filesystem root; use a prefix inside "
                          f"it (e.g. {storage.join(output, 'out')}) so the job's hidden staging "
                          f"prefix can sit beside it.")
    try:
        if not storage.bucket_exists(output):
            raise OutputError(f"cannot write output '{output}': there is no bucket "
                              f"'{storage.bucket_of(output)}' at that endpoint; create it or check "
                              f"the spelling, the endpoint (AWS_ENDPOINT_URL) and the credentials.")
        kind = storage.file_info(output).type
        has_files = kind == FileType.Directory and bool(storage.list_files(output))
    except MapReduceError as exc:
        raise OutputError(exc.paragraph()) from None
    except Exception as exc:
        raise OutputError(storage.describe_error(output, "use the output", exc).paragraph()) from None
    if kind == FileType.File:
        raise OutputError(f"output path '{output}' exists and is an object (a file), not a prefix "
                          f"(directory); choose another --output path.")
    if has_files and not overwrite:
        raise OutputError(f"output directory '{output}' already exists and is not empty; its "
                          f"objects were left untouched. Choose another --output, or pass "
                          f"--overwrite to replace it once the new result is complete.")


def staging_dir_for(output_dir: str, job_id: str) -> str:
    """A hidden sibling of the output directory: the same filesystem, so commit is a rename."""
    if storage.is_uri(output_dir):
        return storage.sibling(output_dir, f".{storage.split(output_dir)[1]}.mapreduce-{job_id}")
    absolute = os.path.abspath(output_dir.rstrip("/") or "/")
    parent, name = os.path.split(absolute)
    return os.path.join(parent, f".{name}.mapreduce-{job_id}")


def create_staging(staging: str) -> None:
    if storage.is_uri(staging):
        storage.make_dirs(storage.join(staging, ATTEMPTS_DIR))
        return
    # Staging dirs of runs killed before they could clean up sit beside it: remove those first.
    siblings = glob.escape(staging[:staging.rindex(".mapreduce-")]) + ".mapreduce-*"
    leftovers.remove_abandoned(siblings, ATTEMPTS_DIR)
    os.makedirs(os.path.join(staging, ATTEMPTS_DIR))
    leftovers.mark_owned(os.path.join(staging, ATTEMPTS_DIR))   # removed with _attempts at commit


def attempt_dir(staging: str, task_id: str, attempt: int) -> str:
    return storage.join(staging, ATTEMPTS_DIR, f"{task_id}-a{attempt}")


def log_path(staging: str, task_id: str, attempt: int) -> str:
    return storage.join(staging, LOGS_DIR, f"{task_id}-a{attempt}.log")


def publish_attempt(staging: str, task_id: str, attempt: int) -> None:
    """Move the committing attempt's part files into staging (each rename is atomic)."""
    source = attempt_dir(staging, task_id, attempt)
    if storage.is_uri(staging):
        for location, name, _ in storage.list_files(source):
            storage.move(location, storage.join(staging, name))
        storage.delete_tree(source)
        return
    for name in sorted(os.listdir(source)):
        os.replace(os.path.join(source, name), os.path.join(staging, name))
    os.rmdir(source)


def commit_job(staging: str, output_dir: str, output_format: str = "text") -> None:
    """Finish the parts for their format (Parquet parts get one schema: they were written by
    independent tasks), write `_SUCCESS` last, then swap staging in as the output directory."""
    from .output import finish_parts      # output imports this module (atomic_file)
    finish_parts(staging, output_format)
    if storage.is_uri(staging):
        _commit_to_object_store(staging, output_dir)
        return
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


def _commit_to_object_store(staging: str, output: str) -> None:
    """Object by object, in the order that keeps `_SUCCESS` truthful: it is deleted first when
    replacing an old result, and written only once every new part is in place."""
    storage.delete_tree(storage.join(staging, ATTEMPTS_DIR))
    old_success = storage.join(output, SUCCESS)
    if storage.exists(old_success):
        storage.delete_file(old_success)
    for location, _, _ in storage.list_files(output):        # --overwrite: the old result
        storage.delete_file(location)
    for location, relative, _ in storage.list_files(staging):
        storage.move(location, storage.join(output, relative))
    with atomic_file(storage.join(output, SUCCESS)):
        pass
    storage.delete_tree(staging)


def abort_job(staging: str) -> None:
    storage.remove_tree_quietly(staging)
