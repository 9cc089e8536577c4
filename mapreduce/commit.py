"""Output commit: every atomic write, task publication and job commit goes through here.

Protocol (the MapReduce paper's, as Hadoop's FileOutputCommitter does it):
- a task attempt writes only under its own temporary name (`_attempts/<task>-a<N>/` in the job's
  staging directory);
- once the coordinator accepts an attempt as the one that commits, `publish_attempt` renames its
  files into the staging directory; a late or duplicate attempt's files are never published, and
  the job commits only once every task's publish has succeeded;
- when the whole job has succeeded (and `output.finish_parts` has given Parquet parts one schema),
  `commit_job` writes the empty `_SUCCESS` into staging and puts staging in place as the output
  directory: without --overwrite by a rename that never replaces anything (another job's output
  that appeared meanwhile makes it OutputTaken), with it by one atomic exchange, so readers see
  either the old state or the complete result;
- a failed or cancelled job's staging is removed and the output directory is never touched.
- `check_job_paths` refuses, before anything runs, an output that overlaps an input.

On an object store (an output URI such as s3://bucket/out) there is no atomic rename, so the same
steps are done object by object: staging is the hidden sibling prefix `.NAME.mapreduce-<job>/`,
publishing moves (copies) the attempt's objects within it, and commit_job moves the parts into
the output and writes `_SUCCESS` last; with --overwrite the old `_SUCCESS` goes first, then the
old objects. Readers must therefore wait for `_SUCCESS`, as with Hadoop or Spark on S3.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import os
import shutil
from typing import Callable

from . import leftovers, storage
from .errors import MapReduceError, OutputError
from .output import join_parts, part_name

ATTEMPTS_DIR = "_attempts"
PIECES_DIR = "_pieces"  # a map-only job's re-planned tasks: their pieces' parts, until commit
LOGS_DIR = "_logs"  # what task attempts printed; kept in the output, like Hadoop's _logs
SUCCESS = "_SUCCESS"
# Names the job whose commit is under way; in the output only until the commit's last step, so
# a coordinator restarted in the middle can tell its own commit (done or half done) from others'.
JOB_MARKER = ".mapreduce-job"
# Object stores: written once a commit has removed what it replaces and starts moving its parts
# in, so that a commit done again after a crash keeps the parts already moved.
MOVING_MARKER = ".mapreduce-moving"


def check_job_paths(
    inputs: list[str],
    output_dir: str,
    work_dir: str | None = None,
    *,
    work_dir_label: str = "--work-dir",
) -> None:
    """Refuse an output that is, contains or lies inside an input, and a work directory inside
    the output or an input, before anything runs, with or without --overwrite: replacing the
    output would delete the input, and a later run would read this job's output (or its shuffle
    files) back as input. Paths are compared where they really are (`..` and symlinks resolved
    locally; the same bucket and overlapping prefixes for URIs)."""
    from .inputs import is_pattern

    for spelled in inputs:
        item = storage.normalize(os.fspath(spelled))
        if is_pattern(item):
            _check_pattern(item, output_dir, work_dir, work_dir_label)
            candidates = glob.glob(item, recursive=True)
        else:
            candidates = [item]
        for candidate in candidates:
            _check_against_input(candidate, item, output_dir, work_dir, work_dir_label)
    if work_dir is not None and storage.is_within(work_dir, output_dir):
        raise OutputError(
            f"{work_dir_label} '{work_dir}' lies inside --output '{output_dir}', "
            f"which the job's commit replaces. Nothing was run or changed; put the "
            f"work directory outside the output."
        )


def _check_against_input(
    path: str, spelled: str, output_dir: str, work_dir: str | None, work_dir_label: str
) -> None:
    named = f"the input '{spelled}'" + (f" (through '{path}')" if path != spelled else "")
    if storage.is_within(output_dir, path):
        if storage.place(output_dir) == storage.place(path):
            where, harm = "is", "replace (delete) the input"
        else:
            where, harm = (
                "lies inside",
                "change the input, and a later run would read this job's output as input",
            )
        raise OutputError(
            f"--output '{output_dir}' {where} {named}: committing the output would "
            f"{harm}. Nothing was run or changed; choose an --output outside every "
            f"input."
        )
    if storage.is_within(path, output_dir):
        raise OutputError(
            f"--output '{output_dir}' contains {named}: committing the output would "
            f"replace the directory and delete the input. Nothing was run or "
            f"changed; choose an --output that holds no input."
        )
    if work_dir is not None and storage.is_within(work_dir, path):
        raise OutputError(
            f"{work_dir_label} '{work_dir}' lies inside {named}: a later run would "
            f"read the job's shuffle files as input. Nothing was run or changed; put "
            f"the work directory outside every input."
        )


def _check_pattern(
    pattern: str, output_dir: str, work_dir: str | None, work_dir_label: str
) -> None:
    """A glob names what it matches now and what it would match later: the output (or the work
    directory) must not be, nor lie inside, a path the pattern matches."""
    parts = storage.place(pattern)[2]
    for label, location in (("--output", output_dir), (work_dir_label, work_dir)):
        if (
            location is not None
            and not storage.is_uri(location)
            and _glob_matches_prefix(parts, storage.place(location)[2])
        ):
            raise OutputError(
                f"{label} '{location}' is matched by the input pattern '{pattern}' "
                f"(or lies inside a path it matches), so a later run would read it "
                f"as input. Nothing was run or changed; put it outside every "
                f"input."
            )


def _glob_matches_prefix(pattern: tuple, parts: tuple) -> bool:
    """True when the glob components `pattern` match `parts` or a leading part of it (`**`
    matches any number of components, as glob's recursive mode does)."""
    if not pattern:
        return True
    if not parts:
        return all(p == "**" for p in pattern)
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return _glob_matches_prefix(rest, parts) or _glob_matches_prefix(pattern, parts[1:])
    return fnmatch.fnmatchcase(parts[0], head) and _glob_matches_prefix(rest, parts[1:])


def check_output_dir(output_dir: str, overwrite: bool) -> None:
    """Refuse an output directory (or prefix) that exists and is not empty, unless overwrite, or
    that could not be created (decided up front, before anything runs, so a refused job changes
    nothing)."""
    from pyarrow.fs import FileType

    try:
        storage.check_can_create(output_dir)
        kind = storage.file_info(output_dir).type
        occupied = kind == FileType.Directory and storage.holds_anything(output_dir)
    except MapReduceError as exc:
        raise OutputError(f"output: {exc.paragraph()}") from None
    except Exception as exc:
        raise OutputError(
            storage.describe_error(output_dir, "use the output", exc).paragraph()
        ) from None
    if kind not in (FileType.Directory, FileType.NotFound):
        raise OutputError(
            f"output path '{output_dir}' exists and is a file, not a directory; choose another "
            f"--output path."
        )
    if occupied and not overwrite:
        raise OutputError(
            f"output directory '{output_dir}' already exists and is not empty; what it holds was "
            f"left untouched. Choose another --output, or pass --overwrite to replace it once the "
            f"new result is complete."
        )


def staging_dir_for(output_dir: str, job_id: str) -> str:
    """A hidden sibling of the output directory: the same filesystem, so commit is a rename."""
    parent, name = storage.split(output_dir)
    return storage.join(parent, f".{name}.mapreduce-{job_id}")


def create_staging(staging: str) -> None:
    if storage.is_uri(staging):  # no leftovers to look for: they are local (pids)
        storage.make_dirs(storage.join(staging, ATTEMPTS_DIR))
        return
    # Staging dirs of runs killed before they could clean up sit beside it: remove those first.
    siblings = glob.escape(staging[: staging.rindex(".mapreduce-")]) + ".mapreduce-*"
    leftovers.remove_abandoned(siblings, ATTEMPTS_DIR)
    os.makedirs(os.path.join(staging, ATTEMPTS_DIR))
    leftovers.mark_owned(os.path.join(staging, ATTEMPTS_DIR))  # removed with _attempts at commit


def attempt_dir(staging: str, task_id: str, attempt: int) -> str:
    return storage.join(staging, ATTEMPTS_DIR, f"{task_id}-a{attempt}")


def log_path(staging: str, task_id: str, attempt: int) -> str:
    return storage.join(staging, LOGS_DIR, f"{task_id}-a{attempt}.log")


def publish_attempt(staging: str, task_id: str, attempt: int) -> None:
    """Move the committing attempt's part files into staging (each local rename is atomic)."""
    source = attempt_dir(staging, task_id, attempt)
    for location, name, _ in storage.list_files(source):
        storage.move(location, storage.join(staging, name))
    storage.delete_tree(source)


def piece_dir(staging: str, task_id: str) -> str:
    return storage.join(staging, PIECES_DIR, task_id)


def publish_piece(staging: str, task_id: str, attempt: int) -> None:
    """publish_attempt for a piece of a re-planned map-only task: its part is not the output's
    yet, so it goes into the piece's own directory, where join_pieces finds it."""
    source = attempt_dir(staging, task_id, attempt)
    target = piece_dir(staging, task_id)
    storage.make_dirs(target)
    for location, name, _ in storage.list_files(source):
        storage.move(location, storage.join(target, name))
    storage.delete_tree(source)


def join_pieces(staging: str, parts: dict, output_format: str) -> None:
    """Before the job commits: each part that re-planned pieces wrote (part number -> the
    pieces' task ids, in input order) becomes the one part file its task would have written, so
    the output does not depend on whether a task was re-planned. Then the pieces are gone."""
    if not parts:
        return
    joined = {name for _, name, _ in storage.list_files(staging) if name.startswith("part-")}
    for index, task_ids in sorted(parts.items()):
        # A part already there was joined by a commit cut short by a restart (whole, by
        # atomic_write; or, for Arrow files moved one by one, along a plan that then still
        # exists): its pieces may be partly gone since.
        plan = storage.join(staging, PIECES_DIR, f"join-{part_name(index)}.json")
        there = any(name.split(".")[0].startswith(part_name(index)) for name in joined)
        if not there or storage.exists(plan):
            sources = [piece_dir(staging, task) for task in task_ids]
            join_parts(sources, staging, index, output_format, plan)
    storage.delete_tree(storage.join(staging, PIECES_DIR))


class OutputTaken(OutputError):
    """Another writer put its output where this job was to commit: this job's result is dropped
    and the other writer's output is left as it is."""

    def __init__(self, output_dir: str):
        super().__init__(
            f"another job committed its output to '{output_dir}' while this job ran "
            f"(it was empty or absent when this job started). This job's result was "
            f"discarded and '{output_dir}' was left as the other job wrote it. Choose "
            f"another --output, or pass --overwrite to replace it."
        )


def _drop_empty_logs(logs_dir: str) -> None:
    """An attempt's log is removed when it ends empty, but an attempt killed meanwhile (a losing
    backup, a cancelled attempt, an executor that died) leaves its empty file: those go, and so
    does the directory when nothing is left in it (no attempt printed anything). A killed
    attempt's log that holds output stays, as Hadoop keeps every attempt's logs."""
    try:
        entries = list(os.scandir(logs_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_size == 0:
                os.unlink(entry.path)
    with contextlib.suppress(OSError):
        os.rmdir(logs_dir)  # only when no attempt printed anything


def commit_job(
    staging: str,
    output_dir: str,
    overwrite: bool = False,
    job_id: str | None = None,
    still_allowed: Callable[[], bool] | None = None,
) -> None:
    """Write `_SUCCESS` last, then put staging in place as the output directory: without
    `overwrite` only where there is nothing (or an empty directory) at that moment, else
    OutputTaken; with it by one atomic exchange, so readers see the old output or the new one.
    With `job_id`, the output carries the job's marker until the last step (`committed_by`).
    `still_allowed` (an elected coordinator's fence) is asked before each object of an
    object-by-object commit; when it says no, the commit stops there (CommitFenced)."""
    if not storage.supports_atomic_rename(staging):
        _commit_object_by_object(staging, output_dir, overwrite, job_id, still_allowed)
        return
    # From here on the local steps: renames of whole directories, renameat2.
    storage.delete_tree_quietly(os.path.join(staging, ATTEMPTS_DIR))
    _drop_empty_logs(os.path.join(staging, LOGS_DIR))
    if job_id is not None:
        with storage.atomic_write(os.path.join(staging, JOB_MARKER), "w") as handle:
            handle.write(job_id)
    with storage.atomic_write(os.path.join(staging, SUCCESS)):
        pass
    if overwrite:
        _replace(staging, output_dir)
    else:
        _place(staging, output_dir)
    if job_id is not None:
        _remove_marker(output_dir)


def committed_by(output_dir: str, job_id: str) -> bool:
    """The output holds this job's committed result (whole, with `_SUCCESS`) whose commit's last
    steps (removing what it replaced, then the marker) may not have run."""
    return _marker_of(output_dir) == job_id and storage.exists(storage.join(output_dir, SUCCESS))


def finish_commit(staging: str, output_dir: str) -> None:
    """The last steps of a commit that `committed_by` found done: remove what is left at the
    staging path (the replaced output, or the objects already copied), then the marker."""
    if storage.is_uri(staging):
        storage.delete_tree_quietly(staging)
    else:
        _remove_old(staging)
    _remove_marker(output_dir)


def _marker_of(output_dir: str) -> str | None:
    try:
        with storage.open_input_stream(storage.join(output_dir, JOB_MARKER)) as stream:
            return stream.read(200).decode("utf-8", "replace")
    except (OSError, MapReduceError):
        return None


def _remove_marker(output_dir: str) -> None:
    if storage.is_uri(output_dir):
        with contextlib.suppress(FileNotFoundError):
            storage.delete_file(storage.join(output_dir, MOVING_MARKER))
    with contextlib.suppress(FileNotFoundError):
        storage.delete_file(storage.join(output_dir, JOB_MARKER))


def _place(staging: str, output_dir: str) -> None:
    """Rename staging to `output_dir`, never replacing anything but an empty directory."""
    try:
        os.rmdir(output_dir)  # an empty directory goes; one with files in it stays
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise OutputTaken(output_dir) from None
        raise
    try:
        rename_no_replace(staging, output_dir)
    except FileExistsError:
        raise OutputTaken(output_dir) from None


def _replace(staging: str, output_dir: str) -> None:
    """--overwrite: swap staging with the old output in one step, then remove the old one. Two
    jobs doing this at once each swap a whole output in: the last one's stays."""
    try:
        rename_no_replace(staging, output_dir)
        return
    except FileExistsError:
        pass
    if _renameat2(staging, output_dir, _RENAME_EXCHANGE):
        _remove_old(staging)  # staging now holds the old output
        return
    # No atomic exchange here: move the old output aside, then put ours in. Another writer that
    # slips in between wins; ours is dropped and the old output removed (it was to go anyway).
    retired = staging + ".old"
    os.rename(output_dir, retired)
    try:
        os.rename(staging, output_dir)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            os.rename(retired, output_dir)
            raise
        raise OutputTaken(output_dir) from None
    finally:
        _remove_old(retired)


def _remove_old(path: str) -> None:
    """Remove what an exchange left at `path`: the old output (a symlink is removed, never
    followed)."""
    if os.path.islink(path) or os.path.isfile(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def rename_no_replace(source: str, destination: str) -> None:
    """Rename `source` to `destination`; FileExistsError when something is already there (Linux
    renameat2 RENAME_NOREPLACE: one atomic step). Elsewhere a look first, then os.rename, which
    replaces at most an empty directory that appeared in between."""
    if _renameat2(source, destination, _RENAME_NOREPLACE):
        return
    if os.path.lexists(destination):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), destination)
    try:
        os.rename(source, destination)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), destination) from None
        raise


def _renameat2(first: str, second: str, flags: int) -> bool:
    """Linux renameat2; False where the system or filesystem does not support it, OSError (as
    FileExistsError for an existing destination) when it failed otherwise."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise (
        OSError(code, os.strerror(code), second)
        if code != errno.EEXIST
        else FileExistsError(code, os.strerror(code), second)
    )


class CommitFenced(Exception):
    """The coordinator carrying out a commit is no longer allowed to (it lost its leadership)."""


def _commit_object_by_object(
    staging: str,
    output: str,
    overwrite: bool,
    job_id: str | None = None,
    still_allowed: Callable[[], bool] | None = None,
) -> None:
    """Object by object, in the order that keeps `_SUCCESS` truthful: it is deleted first when
    replacing an old result, and written only once every new part is in place. Without
    `overwrite`, the output is looked at again just before: objects that appeared there since
    the job started (another writer) make it OutputTaken. With `job_id`, the job's marker goes
    in first and out last: a commit cut short is recognised as this job's and done again."""

    def allowed() -> None:
        if still_allowed is not None and not still_allowed():
            raise CommitFenced(f"the commit to '{output}' was stopped: not allowed any more")

    storage.delete_tree_quietly(storage.join(staging, ATTEMPTS_DIR))
    existing = storage.list_files(output)
    ours = job_id is not None and _marker_of(output) == job_id
    if existing and not overwrite and not ours:
        raise OutputTaken(output)
    # Our own commit, cut short while moving parts in: those in the output are the job's own.
    moving = ours and any(relative == MOVING_MARKER for _, relative, _ in existing)
    if job_id is not None:
        with storage.atomic_write(storage.join(output, JOB_MARKER), "w") as handle:
            handle.write(job_id)
    if not moving:
        old_success = storage.join(output, SUCCESS)
        if any(relative == SUCCESS for _, relative, _ in existing):
            allowed()
            storage.delete_file(old_success)
        for location, relative, _ in existing:  # --overwrite (or our own half-done commit)
            if relative not in (SUCCESS, JOB_MARKER):
                allowed()
                storage.delete_file(location)
        if job_id is not None:
            with storage.atomic_write(storage.join(output, MOVING_MARKER), "w") as handle:
                handle.write(job_id)
    for location, relative, _ in storage.list_files(staging):
        allowed()
        storage.move(location, storage.join(output, relative))
    with storage.atomic_write(storage.join(output, SUCCESS)):
        pass
    storage.delete_tree(staging)
    if job_id is not None:
        _remove_marker(output)


def abort_job(staging: str) -> None:
    storage.delete_tree_quietly(staging)
