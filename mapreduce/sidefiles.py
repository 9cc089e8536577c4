"""Side files: `--file`, `--archive` and `--py-files` (Hadoop's distributed cache, mrjob's
`--files`/`--archives`, Spark's `--py-files`).

Where the job is submitted, `collect` describes each side file (where it is, a local path or a
URI such as s3://bucket/key; its base name; the SHA-256 of its content) and the list travels with
the job's code. On a worker, `prepare` fetches each file once into a cache keyed by that hash
(archives unpacked once), and builds the job's working directory: a symbolic link per side file
under its base name (an archive: the directory it was unpacked into, named after the archive;
a .py of --py-files: the module file). Task attempts run in that directory, with it and each zip
of --py-files on sys.path, so a mapper opens "stopwords.txt" and a job imports its helper modules.
The cache lives in $TMPDIR/mapreduce-side-files-UID (0700); entries are written under temporary
names and renamed into place, so processes sharing it never see half a file. Every use stamps an
entry (its modification time), and `prune`, run whenever something new is cached, removes the
least recently used ones (as YARN's cache cleaner does): those idle for
SIDE_FILE_CACHE_IDLE_S, then, while the cache holds more than SIDE_FILE_CACHE_BYTES, those idle
for at least SIDE_FILE_CACHE_MIN_IDLE_S. A job's directory is stamped with its files, so it never
outlives a file it links to; one found with a missing file is made again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from typing import Iterator

from . import defaults, storage
from .errors import InputError

KINDS = ("file", "archive", "py")
OPTIONS = {"file": "--file", "archive": "--archive", "py": "--py-files"}
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2")
_CHUNK = 1 << 20


def collect(files=(), archives=(), py_files=()) -> list[dict]:
    """The side files as they travel with the job: [{"kind", "source", "name", "sha256"}];
    InputError (one paragraph) for a missing one, an archive of an unknown kind, two with the
    same base name."""
    described: list[dict] = []
    names: dict = {}
    for kind, locations in (("file", files), ("archive", archives), ("py", py_files)):
        for location in locations:
            source = storage.absolute(str(location))
            name = storage.split(source.rstrip("/"))[1]
            option = OPTIONS[kind]
            if kind == "archive" and not name.lower().endswith(ARCHIVE_SUFFIXES):
                raise InputError(
                    f"{option} {location}: an archive must be a .zip, .tar.gz, .tgz, .tar "
                    f"or .tar.bz2 file (to pass a file as it is, use --file)."
                )
            if kind == "py" and not name.lower().endswith((".py", ".zip", ".egg", ".whl")):
                raise InputError(
                    f"--py-files {location}: give a Python module (.py) or a zip of packages "
                    f"(.zip, .egg, .whl)."
                )
            if name in names:
                raise InputError(
                    f"{option} {location} and {names[name]} have the same base name '{name}', "
                    f"under which both would appear in the tasks' working directory; rename one."
                )
            names[name] = location
            described.append(
                {
                    "kind": kind,
                    "source": source,
                    "name": name,
                    "sha256": _digest(source, f"{option} {location}"),
                }
            )
    return described


def _digest(source: str, given: str) -> str:
    try:
        if not storage.is_uri(source) and os.path.isdir(source):
            raise IsADirectoryError(f"{source} is a directory")
        digest = hashlib.sha256()
        with storage.open_input_stream(source) as stream:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except (OSError, ValueError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(
            f"{given} cannot be read ({cause}). Give a readable file: a local path or a URI "
            f"such as s3://bucket/key."
        ) from None


def attach(jobs, files=(), archives=(), py_files=()) -> None:
    """Give every job (each step of a multi-step job) the side files, described once."""
    side_files = collect(files or (), archives or (), py_files or ())
    if side_files:
        for job in jobs:
            job.side_files = side_files


def cache_root() -> str:
    """The cache directory, private to this user: one that another user could write into (made
    by them under the same name in a shared $TMPDIR) is refused, as its files could be planted."""
    root = os.path.join(tempfile.gettempdir(), f"mapreduce-side-files-{os.getuid()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    status = os.lstat(root)
    if status.st_uid != os.getuid() or status.st_mode & 0o077 or os.path.islink(root):
        raise OSError(
            f"the side-file cache {root} is not a directory private to this user (owner "
            f"{status.st_uid}, mode {status.st_mode & 0o777:o}); remove it, or set TMPDIR"
        )
    return root


def prepare(side_files: list[dict]) -> str:
    """Fetch what is not cached yet, and return the job's working directory (see the module's
    docstring); the same list gives the same directory, made once."""
    root = cache_root()
    job_key = hashlib.sha256(
        "\n".join(f"{f['kind']} {f['name']} {f['sha256']}" for f in side_files).encode()
    ).hexdigest()[:32]
    workdir = os.path.join(root, "jobs", job_key)
    if os.path.isdir(workdir):
        if _stamp([workdir] + [os.path.join(root, f["sha256"]) for f in side_files]):
            return workdir
        _remove(workdir)  # a file it links to was pruned: make it again
    links = {f["name"]: _cached(root, f) for f in side_files}
    os.makedirs(os.path.join(root, "jobs"), exist_ok=True)
    building = tempfile.mkdtemp(dir=os.path.join(root, "jobs"), prefix=".building-")
    for name, target in links.items():
        os.symlink(target, os.path.join(building, name))
    _rename_into_place(building, workdir)
    prune(root)
    return workdir


def _stamp(paths: list[str]) -> bool:
    """Mark these cache entries as used now; False if one of them is gone."""
    try:
        for path in paths:
            os.utime(path)
    except FileNotFoundError:
        return False
    return True


def prune(
    root: str,
    now: float | None = None,
    idle_s: float = defaults.SIDE_FILE_CACHE_IDLE_S,
    max_bytes: int = defaults.SIDE_FILE_CACHE_BYTES,
    min_idle_s: float = defaults.SIDE_FILE_CACHE_MIN_IDLE_S,
) -> list[str]:
    """Remove the cache's least recently used entries (see the module's docstring); returns the
    paths removed. Job directories go before the files they link to, which are stamped no
    earlier, so a job directory never points at a removed file."""
    now = time.time() if now is None else now
    entries = []  # (last used, is a file entry, path, bytes)
    for parent, is_file in ((os.path.join(root, "jobs"), False), (root, True)):
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(parent):
                path = os.path.join(parent, name)
                if name == "jobs" or not os.path.isdir(path):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    entries.append((os.stat(path).st_mtime, is_file, path, _size(path)))
    entries.sort()
    total = sum(entry[3] for entry in entries)
    removed = []
    for used, _, path, size in entries:
        idle = now - used
        # What a crashed process left half made (.building-, .removing-) goes by age only.
        evictable = not os.path.basename(path).startswith(".") and idle >= min_idle_s
        if idle >= idle_s or (total > max_bytes and evictable):
            _remove(path)
            removed.append(path)
            total -= size
    return removed


def _size(path: str) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _remove(path: str) -> None:
    """Out of sight at once (renamed), then deleted: a process looking for it fetches it again."""
    parent = os.path.dirname(path)
    try:
        doomed = tempfile.mkdtemp(dir=parent, prefix=".removing-")
        os.rename(path, os.path.join(doomed, "entry"))
    except OSError:
        return  # another process removed or replaced it
    shutil.rmtree(doomed, ignore_errors=True)


def _cached(root: str, side_file: dict) -> str:
    """The cached copy of a side file (an archive: the directory it was unpacked into)."""
    entry = os.path.join(root, side_file["sha256"])
    content = os.path.join(entry, "content")
    if not os.path.exists(content):
        os.makedirs(entry, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=entry, prefix=".fetching-")
        try:
            digest = hashlib.sha256()
            with (
                os.fdopen(handle, "wb") as out,
                storage.open_input_stream(side_file["source"]) as stream,
            ):
                for chunk in iter(lambda: stream.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != side_file["sha256"]:
                raise OSError(
                    f"{side_file['source']} changed after the job was submitted (its content "
                    f"no longer matches); submit the job again"
                )
            os.replace(partial, content)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
    if side_file["kind"] != "archive":
        # The link in the working directory needs the right name for imports (.py, .zip).
        named = os.path.join(entry, side_file["name"])
        if not os.path.lexists(named):
            with contextlib.suppress(FileExistsError):
                os.symlink(content, named)
        _stamp([entry])
        return named
    unpacked = os.path.join(entry, "unpacked")
    if not os.path.isdir(unpacked):
        building = tempfile.mkdtemp(dir=entry, prefix=".unpacking-")
        _unpack(content, side_file["name"], building)
        _rename_into_place(building, unpacked)
    _stamp([entry])
    return unpacked


def _unpack(archive: str, name: str, directory: str) -> None:
    if name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(directory)
    else:
        with tarfile.open(archive) as handle:
            handle.extractall(directory, filter="data")


def _rename_into_place(building: str, final: str) -> None:
    try:
        os.rename(building, final)
    except OSError:  # another process made it first: theirs is the same
        shutil.rmtree(building, ignore_errors=True)
        if not os.path.isdir(final):
            raise


def import_paths(side_files: list[dict], workdir: str) -> list[str]:
    """What goes on sys.path for --py-files: the working directory (modules) and each zip."""
    paths = [workdir] if any(f["kind"] == "py" for f in side_files) else []
    paths += [
        os.path.join(workdir, f["name"])
        for f in side_files
        if f["kind"] == "py" and not f["name"].lower().endswith(".py")
    ]
    return paths


def use_py_files_here(py_files) -> None:
    """Where the job is loaded (run, submit): make its --py-files importable, as on workers."""
    if not py_files:
        return
    side_files = collect(py_files=py_files)
    workdir = prepare(side_files)
    for path in reversed(import_paths(side_files, workdir)):
        if path not in sys.path:
            sys.path.insert(0, path)


@contextlib.contextmanager
def working_directory(side_files: list[dict], workdir: str) -> Iterator[None]:
    """Run a task attempt in the job's working directory, with its --py-files importable."""
    previous = os.getcwd()
    added = [path for path in import_paths(side_files, workdir) if path not in sys.path]
    sys.path[:0] = added
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(previous)
        for path in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(path)
