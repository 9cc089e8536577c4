"""Where a path lives: a plain local path, or a URI of any filesystem pyarrow.fs knows
(`s3://bucket/key`, `gs://...`, `hdfs://host:port/path`, ...).

Locations travel between processes (and machines) as strings; every process rebuilds the
filesystem from the string, so a worker needs nothing but the URI and its own environment
(credentials, endpoint). All file I/O goes through one interface with two backends, chosen from
the location string: LocalStorage (os and shutil: renames, memory maps) for plain paths and
ArrowStorage (pyarrow.fs) for URIs. Every final file is written by `atomic_write`. A `file://` URI
is turned into the plain local path it names by `normalize`, at the command's edge, so it takes
the local backend too.

S3 settings come from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_DEFAULT_REGION, read by the AWS SDK inside pyarrow) plus an
endpoint for S3-compatible servers (MinIO, moto, Ceph): AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL,
e.g. http://127.0.0.1:9000. pyarrow 26 reads those two itself, older versions do not, so they are
read here and passed as `endpoint_override` and `scheme`. Options in the URI's query
(`s3://bucket/key?endpoint_override=host:9000&scheme=http`) are passed to pyarrow as they are and
win over the environment; joined names go before the query, so it stays at the end.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import threading
import uuid
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .errors import MapReduceError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Object stores have no directories: a key needs no parent, and creating "directories" would
# only leave marker objects behind.
OBJECT_STORE_SCHEMES = ("s3", "gs", "gcs")
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# What a listed key may contain and still be written back into a URI unquoted.
_SAFE_IN_URI = "/:@!$&'()*+,;=-._~"


class StorageError(MapReduceError):
    """A location that cannot be used: a malformed URI, an unknown scheme, an unreachable
    endpoint, a missing bucket."""


# ----------------------------------------------------------------------------------------------
# Names: no I/O
# ----------------------------------------------------------------------------------------------


def is_uri(location: str) -> bool:
    """True for `scheme://...` (anything a filesystem other than the local one must open)."""
    return bool(_SCHEME.match(location))


def normalize(location: str) -> str:
    """A `file://` URI as the local path it names; anything else unchanged."""
    location = os.fspath(location)
    if not location.lower().startswith("file://"):
        return location
    parts = urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        raise StorageError(
            f"'{location}' names host '{parts.netloc}': a file:// URI is a path on "
            f"this machine (file:///absolute/path); use a shared filesystem's "
            f"mount point or its own scheme (hdfs://, s3://) instead."
        )
    return unquote(parts.path) or "/"


def absolute(location: str) -> str:
    """A local path made absolute against this process's directory; a URI as it is."""
    location = normalize(location)
    return location if is_uri(location) else os.path.abspath(location)


def scheme_of(location: str) -> str:
    return urlsplit(location).scheme.lower() if is_uri(location) else ""


def is_object_store(location: str) -> bool:
    return scheme_of(location) in OBJECT_STORE_SCHEMES


def join(location: str, *names: str) -> str:
    """`location/name/...`; for a URI the names go into its path, before any query."""
    if not is_uri(location):
        return os.path.join(location, *names)
    parts = urlsplit(location)
    path = parts.path.rstrip("/")
    for name in names:
        path += "/" + quote(name.strip("/"), safe=_SAFE_IN_URI)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def split(location: str) -> tuple[str, str]:
    """(parent location, last name), like os.path.split but keeping a URI's query on the parent.
    The last name of a bucket root (`s3://bucket`) is empty: it has no parent."""
    if not is_uri(location):
        return os.path.split(os.path.abspath(location.rstrip("/") or "/"))
    parts = urlsplit(location)
    parent, _, name = parts.path.rstrip("/").rpartition("/")
    return urlunsplit((parts.scheme, parts.netloc, parent, parts.query, "")), unquote(name)


def path_part(location: str) -> str:
    """A URI's path without its query: what a file name's extension is taken from."""
    return unquote(urlsplit(location).path) if is_uri(location) else location


def sibling(location: str, name: str) -> str:
    """The location `name` beside `location` (same directory or prefix, same filesystem)."""
    parent, _ = split(location)
    return join(parent, name)


def bucket_of(location: str) -> str | None:
    """The bucket of an object-store URI (its netloc), else None."""
    return urlsplit(location).netloc if is_object_store(location) else None


def place(location: str) -> tuple[str, str, tuple[str, ...]]:
    """Where a location really is, for comparing two of them: (scheme, host or bucket, path
    components). A local path is resolved against the working directory, `..` and symlinks
    included; a URI's query (options, not a place) is left out, and its `..` collapsed."""
    if not is_uri(location):
        names = os.path.realpath(os.path.abspath(location)).split(os.sep)
        return "", "", tuple(name for name in names if name)
    parts = urlsplit(location)
    path = posixpath.normpath("/" + unquote(parts.path))
    return parts.scheme.lower(), parts.netloc, tuple(part for part in path.split("/") if part)


def is_within(inner: str, outer: str) -> bool:
    """True when `inner` is `outer` or lies below it (on the same filesystem or bucket)."""
    inner_place, outer_place = place(inner), place(outer)
    return (
        inner_place[:2] == outer_place[:2]
        and inner_place[2][: len(outer_place[2])] == outer_place[2]
    )


# ----------------------------------------------------------------------------------------------
# Filesystems
# ----------------------------------------------------------------------------------------------

_filesystems: dict = {}
_filesystems_lock = threading.Lock()


def resolve(location: str):
    """(pyarrow FileSystem, path within it) for a URI; filesystems are cached per scheme, host
    (bucket) and options, so an S3 client is built once per process, not once per file."""
    parts = urlsplit(location)
    # The pid is part of the key: a client built before a fork must not be used after it.
    key = (
        os.getpid(),
        parts.scheme.lower(),
        parts.netloc,
        parts.query,
        _endpoint_from_environment(),
    )
    with _filesystems_lock:
        entry = _filesystems.get(key)
        if entry is None:
            entry = _filesystems[key] = _filesystem_for(parts)
    filesystem, root = entry
    inside = unquote(parts.path).strip("/")
    if not inside:
        return filesystem, root
    if root in ("", "/"):
        return filesystem, root + inside  # hdfs://host:port/a -> "/a"
    return filesystem, f"{root.rstrip('/')}/{inside}"  # s3://bucket/a -> "bucket/a"


def _filesystem_for(parts):
    """The filesystem for a URI's scheme, host and options, and the path its root resolves to
    ("bucket" for s3://bucket, "/" for hdfs://host:port)."""
    from pyarrow import fs

    query = parts.query
    endpoint = _endpoint_from_environment()
    if parts.scheme.lower() == "s3" and endpoint and "endpoint_override" not in query:
        query = "&".join(filter(None, [query, _endpoint_query(endpoint)]))
    root_uri = urlunsplit((parts.scheme, parts.netloc, "/", query, ""))
    try:
        return fs.FileSystem.from_uri(root_uri)
    except Exception as exc:
        raise StorageError(
            f"cannot open '{urlunsplit(parts)}': {_first_line(exc)}. {_hint(parts.scheme)}"
        ) from None


def _endpoint_from_environment() -> str:
    return next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), "")


def _endpoint_query(endpoint: str) -> str:
    """pyarrow's endpoint_override takes host:port, and the scheme separately."""
    parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    return f"endpoint_override={quote(parsed.netloc, safe=':')}&scheme={parsed.scheme}"


def _hint(scheme: str) -> str:
    if scheme.lower() == "s3":
        return (
            "Check the URI (s3://bucket/key), the endpoint (AWS_ENDPOINT_URL for servers other "
            "than AWS) and the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."
        )
    return (
        "Use a local path or a URI pyarrow.fs can open (s3://bucket/key, gs://bucket/key, "
        "hdfs://host:port/path), and check that its server is reachable."
    )


def _first_line(exc: BaseException) -> str:
    # Arrow's messages can run to pages (libjvm search paths for hdfs); the first line says it.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def describe_error(location: str, doing: str, exc: BaseException) -> StorageError:
    """One paragraph for a failed operation on a local path or a URI."""
    if isinstance(exc, StorageError):
        return exc
    if not is_uri(location):
        reason = getattr(exc, "strerror", None) or _first_line(exc)
        return StorageError(f"cannot {doing} '{location}': {reason}.")
    return StorageError(
        f"cannot {doing} '{location}': {_first_line(exc)}. {_hint(scheme_of(location))}"
    )


# ----------------------------------------------------------------------------------------------
# One file-system interface, two backends: LocalStorage (os, shutil: atomic renames, memory maps)
# and ArrowStorage (pyarrow.fs: S3, GCS, HDFS, ...), chosen from the location string. Callers use
# the module-level functions below and never ask which backend they got, except through the
# capability `supports_atomic_rename` (the job commit's final step).
# ----------------------------------------------------------------------------------------------


class LocalStorage:
    """Plain local paths."""

    supports_atomic_rename = True

    def file_info(self, location: str):
        from pyarrow import fs

        return fs.LocalFileSystem().get_file_info(location)

    def exists(self, location: str) -> bool:
        return os.path.exists(location)

    def readable(self, location: str) -> bool:
        return os.access(location, os.R_OK)

    def size(self, location: str) -> int:
        return os.path.getsize(location)

    def list_files(self, location: str) -> list[tuple[str, str, int]]:
        found = []
        for directory, _, names in os.walk(location):
            for name in names:
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, location).replace(os.sep, "/")
                found.append((path, relative, os.path.getsize(path)))
        found.sort()
        return found

    def bucket_exists(self, location: str) -> bool:
        return True

    def check_can_create(self, location: str) -> None:
        """StorageError when a directory could not be created at `location`: its nearest
        existing ancestor is not writable."""
        existing = os.path.dirname(os.path.abspath(location))
        while not os.path.isdir(existing):
            existing = os.path.dirname(existing)
        if not os.access(existing, os.W_OK | os.X_OK):
            raise StorageError(f"cannot create '{location}': '{existing}' is not writable.")

    def holds_anything(self, location: str) -> bool:
        """Whether the directory `location` has any entry (hidden ones and empty folders too)."""
        return bool(os.listdir(location))

    def open_input_file(self, location: str, memory_map: bool = False):
        if memory_map:
            import pyarrow as pa

            return pa.memory_map(location, "r")
        return open(location, "rb")

    def arrow_source(self, location: str):
        return contextlib.nullcontext(location)  # Arrow opens a local path itself

    def open_input_stream(self, location: str, compression: str | None = None):
        if compression == "gzip":
            import gzip

            return gzip.open(location, "rb")
        if compression == "bz2":
            import bz2

            return bz2.open(location, "rb")
        return open(location, "rb")

    @contextlib.contextmanager
    def atomic_write(self, location: str, mode: str, source: str | None, open_args: dict):
        """A temporary sibling, renamed over `location` on success, deleted on error."""
        directory, name = os.path.split(location)
        temporary = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            if source is not None:
                shutil.move(source, temporary)  # a rename on the same filesystem
                yield None
            else:
                with open(temporary, mode, **open_args) as handle:
                    yield handle
            os.replace(temporary, location)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def make_dirs(self, location: str) -> None:
        os.makedirs(location, exist_ok=True)

    def delete_file(self, location: str) -> None:
        os.unlink(location)

    def delete_tree(self, location: str) -> None:
        if os.path.isdir(location) and not os.path.islink(location):
            shutil.rmtree(location)
        elif os.path.lexists(location):
            os.unlink(location)

    def move(self, source: str, destination: str) -> None:
        os.replace(source, destination)

    def read_tail(self, location: str, limit: int) -> bytes:
        with open(location, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            return handle.read()


class ArrowStorage:
    """URIs of any filesystem pyarrow.fs knows. On object stores there are no directories and
    no atomic rename: a move is a copy and a delete."""

    supports_atomic_rename = False

    def file_info(self, location: str):
        filesystem, path = resolve(location)
        return filesystem.get_file_info(path)

    def readable(self, location: str) -> bool:
        return True  # the store decides when the object is opened (credentials, policies)

    def exists(self, location: str) -> bool:
        from pyarrow import fs

        return self.file_info(location).type != fs.FileType.NotFound

    def size(self, location: str) -> int:
        info = self.file_info(location)
        if info.size is None:
            raise FileNotFoundError(f"'{location}' does not exist or is not a file")
        return info.size

    def list_files(self, location: str) -> list[tuple[str, str, int]]:
        """Empty "directory marker" objects are not files."""
        from pyarrow import fs

        filesystem, top = resolve(location)
        selector = fs.FileSelector(top, recursive=True, allow_not_found=True)
        found = []
        for info in filesystem.get_file_info(selector):
            if info.type != fs.FileType.File:
                continue
            relative = info.path[len(top) :].lstrip("/") if top else info.path
            found.append((join(location, relative), relative, info.size))
        found.sort()
        return found

    def bucket_exists(self, location: str) -> bool:
        from pyarrow import fs

        bucket = bucket_of(location)
        if not bucket:
            return True
        filesystem, _ = resolve(location)
        return filesystem.get_file_info(bucket).type == fs.FileType.Directory

    def check_can_create(self, location: str) -> None:
        """StorageError when a prefix could not hold a job's output at `location`: it is a bucket
        or filesystem root (no room for the hidden staging prefix beside it), or its bucket is
        missing."""
        if not split(location)[1]:
            raise StorageError(
                f"'{location}' is a bucket or filesystem root; use a prefix inside it (e.g. "
                f"{join(location, 'out')}) so the job's hidden staging prefix can sit beside it."
            )
        if not self.bucket_exists(location):
            raise StorageError(
                f"cannot write '{location}': there is no bucket '{bucket_of(location)}' at that "
                f"endpoint; create it or check the spelling, the endpoint (AWS_ENDPOINT_URL) and "
                f"the credentials."
            )

    def holds_anything(self, location: str) -> bool:
        """Whether any object lies below the prefix `location`."""
        return bool(self.list_files(location))

    def open_input_file(self, location: str, memory_map: bool = False):
        """Seekable; each read is a ranged request on an object store."""
        filesystem, path = resolve(location)
        return filesystem.open_input_file(path)

    def arrow_source(self, location: str):
        return self.open_input_file(location)

    def open_input_stream(self, location: str, compression: str | None = None):
        import pyarrow as pa

        filesystem, path = resolve(location)
        stream = filesystem.open_input_stream(path)
        return pa.CompressedInputStream(stream, compression) if compression else stream

    @contextlib.contextmanager
    def atomic_write(self, location: str, mode: str, source: str | None, open_args: dict):
        """The object appears only when the stream is closed; after an error the (partial)
        object is deleted. Attempts write only under their own prefix, so a partial object is
        never where a reader looks."""
        import io

        filesystem, path = resolve(location)
        stream = filesystem.open_output_stream(path)
        handle = (
            stream if source is not None or "b" in mode else io.TextIOWrapper(stream, **open_args)
        )
        try:
            if source is not None:
                with open(source, "rb") as local:
                    shutil.copyfileobj(local, stream, 1 << 20)
                yield None
            else:
                yield handle
        except BaseException:
            with contextlib.suppress(Exception):
                handle.close()
                filesystem.delete_file(path)
            raise
        handle.close()
        if source is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(source)

    def make_dirs(self, location: str) -> None:
        if is_object_store(location):
            return  # keys have no parents; markers would only be left behind
        filesystem, path = resolve(location)
        filesystem.create_dir(path, recursive=True)

    def delete_file(self, location: str) -> None:
        filesystem, path = resolve(location)
        filesystem.delete_file(path)

    def delete_tree(self, location: str) -> None:
        from pyarrow import fs

        filesystem, path = resolve(location)
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.Directory:
            filesystem.delete_dir(path)
        elif info.type == fs.FileType.File:
            filesystem.delete_file(path)

    def move(self, source: str, destination: str) -> None:
        filesystem, source_path = resolve(source)
        _, destination_path = resolve(destination)
        filesystem.move(source_path, destination_path)

    def read_tail(self, location: str, limit: int) -> bytes:
        with self.open_input_file(location) as handle:
            length = handle.size()
            handle.seek(max(0, length - limit))
            return handle.read()


_LOCAL = LocalStorage()
_ARROW = ArrowStorage()


def backend(location: str):
    """The backend that handles `location`: ArrowStorage for a URI, LocalStorage for a path."""
    return _ARROW if is_uri(location) else _LOCAL


# ----------------------------------------------------------------------------------------------
# Operations, on local paths and URIs alike
# ----------------------------------------------------------------------------------------------


def supports_atomic_rename(location: str) -> bool:
    """Whether a directory at `location` can be renamed (or exchanged) in one atomic step."""
    return backend(location).supports_atomic_rename


def file_info(location: str):
    """pyarrow FileInfo (type File, Directory or NotFound, size)."""
    return backend(location).file_info(location)


def exists(location: str) -> bool:
    return backend(location).exists(location)


def readable(location: str) -> bool:
    """False when this process may not read the local file `location` (its permissions); an
    object store's permissions show only when the object is opened."""
    return backend(location).readable(location)


def size(location: str) -> int:
    return backend(location).size(location)


def list_files(location: str) -> list[tuple[str, str, int]]:
    """Every file below a directory or prefix, recursively: (location, path relative to
    `location` with "/" separators, size), sorted by location; nothing there is an empty list."""
    return backend(location).list_files(location)


def bucket_exists(location: str) -> bool:
    """False only for an object-store URI whose bucket is missing."""
    return backend(location).bucket_exists(location)


def check_can_create(location: str) -> None:
    """StorageError (one paragraph) when a job's output directory or prefix could not be created
    at `location` (an unwritable parent; a bucket root or a missing bucket)."""
    backend(location).check_can_create(location)


def holds_anything(location: str) -> bool:
    """Whether the existing directory or prefix `location` is not empty."""
    return backend(location).holds_anything(location)


def open_input_file(location: str, memory_map: bool = False):
    """A seekable reader of the file's bytes; `memory_map` maps a local file (Arrow readers)."""
    return backend(location).open_input_file(location, memory_map)


def arrow_source(location: str):
    """What pyarrow's file readers (ParquetFile) take, as a context manager: a local path itself
    (Arrow opens it), else a seekable file of the object."""
    return backend(location).arrow_source(location)


def open_input_stream(location: str, compression: str | None = None):
    """A sequential reader, decompressing "gzip" or "bz2" when asked."""
    return backend(location).open_input_stream(location, compression)


def atomic_write(location: str, mode: str = "wb", *, source: str | None = None, **open_args):
    """The one way to write a final file, as a context manager yielding the file to write
    (`mode` and `open_args` as for open()). Readers see the whole file or none: locally a
    temporary sibling renamed over `location` on success, on an object store an object that
    appears only when closed; after an error nothing is left at `location`.
    With `source` (a finished local file) nothing is yielded: that file itself is put in place,
    by a rename when it is on the same filesystem, and is gone afterwards."""
    return backend(location).atomic_write(location, mode, source, open_args)


def make_dirs(location: str) -> None:
    """A directory at `location` and its parents, if missing (object stores need none)."""
    backend(location).make_dirs(location)


def delete_file(location: str) -> None:
    backend(location).delete_file(location)


def delete_tree(location: str) -> None:
    """Remove a directory or prefix and everything below it; nothing there is no error."""
    backend(location).delete_tree(location)


def delete_tree_quietly(location: str) -> None:
    """delete_tree for cleanup paths, where a failure must not hide the error being reported."""
    try:
        delete_tree(location)
    except Exception:
        pass


def move(source: str, destination: str) -> None:
    """Rename a file, replacing `destination` (a copy and a delete on object stores: not atomic)."""
    backend(source).move(source, destination)


def read_tail(location: str, limit: int) -> bytes:
    """The last `limit` bytes of a file."""
    return backend(location).read_tail(location, limit)
