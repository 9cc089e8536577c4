"""Where a path lives: a plain local path, or a URI of any filesystem pyarrow.fs knows
(`s3://bucket/key`, `gs://...`, `hdfs://host:port/path`, ...).

Locations travel between processes (and machines) as strings; every process rebuilds the
filesystem from the string, so a worker needs nothing but the URI and its own environment
(credentials, endpoint). Plain local paths never come through here for their I/O: callers keep
their os-level code (atomic renames, memory maps) and ask `is_uri` first. A `file://` URI is
turned into the plain local path it names by `normalize`, at the command's edge, so it takes that
fast path too.

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
import threading
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
        raise StorageError(f"'{location}' names host '{parts.netloc}': a file:// URI is a path on "
                           f"this machine (file:///absolute/path); use a shared filesystem's "
                           f"mount point or its own scheme (hdfs://, s3://) instead.")
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
        parts = os.path.realpath(os.path.abspath(location)).split(os.sep)
        return "", "", tuple(part for part in parts if part)
    parts = urlsplit(location)
    path = posixpath.normpath("/" + unquote(parts.path))
    return parts.scheme.lower(), parts.netloc, tuple(part for part in path.split("/") if part)


def is_within(inner: str, outer: str) -> bool:
    """True when `inner` is `outer` or lies below it (on the same filesystem or bucket)."""
    inner_place, outer_place = place(inner), place(outer)
    return (inner_place[:2] == outer_place[:2]
            and inner_place[2][:len(outer_place[2])] == outer_place[2])


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
    key = (os.getpid(), parts.scheme.lower(), parts.netloc, parts.query,
           _endpoint_from_environment())
    with _filesystems_lock:
        entry = _filesystems.get(key)
        if entry is None:
            entry = _filesystems[key] = _filesystem_for(parts)
    filesystem, root = entry
    inside = unquote(parts.path).strip("/")
    if not inside:
        return filesystem, root
    if root in ("", "/"):
        return filesystem, root + inside          # hdfs://host:port/a -> "/a"
    return filesystem, f"{root.rstrip('/')}/{inside}"   # s3://bucket/a -> "bucket/a"


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
        raise StorageError(f"cannot open '{urlunsplit(parts)}': {_first_line(exc)}. "
                           f"{_hint(parts.scheme)}") from None


def _endpoint_from_environment() -> str:
    return next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), "")


def _endpoint_query(endpoint: str) -> str:
    """pyarrow's endpoint_override takes host:port, and the scheme separately."""
    parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    return f"endpoint_override={quote(parsed.netloc, safe=':')}&scheme={parsed.scheme}"


def _hint(scheme: str) -> str:
    if scheme.lower() == "s3":
        return ("Check the URI (s3://bucket/key), the endpoint (AWS_ENDPOINT_URL for servers other "
                "than AWS) and the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).")
    return ("Use a local path or a URI pyarrow.fs can open (s3://bucket/key, gs://bucket/key, "
            "hdfs://host:port/path), and check that its server is reachable.")


def _first_line(exc: BaseException) -> str:
    # Arrow's messages can run to pages (libjvm search paths for hdfs); the first line says it.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def describe_error(location: str, doing: str, exc: BaseException) -> StorageError:
    """One paragraph for a failed operation on a URI."""
    if isinstance(exc, StorageError):
        return exc
    return StorageError(f"cannot {doing} '{location}': {_first_line(exc)}. "
                        f"{_hint(scheme_of(location))}")


# ----------------------------------------------------------------------------------------------
# Operations on URIs (local paths keep their os-level code in the callers)
# ----------------------------------------------------------------------------------------------

def file_info(location: str):
    """pyarrow FileInfo (type File, Directory or NotFound, size)."""
    filesystem, path = resolve(location)
    return filesystem.get_file_info(path)


def exists(location: str) -> bool:
    from pyarrow import fs
    return file_info(location).type != fs.FileType.NotFound


def size(location: str) -> int:
    info = file_info(location)
    if info.size is None:
        raise FileNotFoundError(f"'{location}' does not exist or is not a file")
    return info.size


def list_files(location: str) -> list[tuple[str, str, int]]:
    """Every file below a directory or prefix, recursively: (URI, path relative to `location`,
    size), sorted by URI. Empty "directory marker" objects are not files."""
    from pyarrow import fs
    filesystem, top = resolve(location)
    selector = fs.FileSelector(top, recursive=True, allow_not_found=True)
    found = []
    for info in filesystem.get_file_info(selector):
        if info.type != fs.FileType.File:
            continue
        relative = info.path[len(top):].lstrip("/") if top else info.path
        found.append((join(location, relative), relative, info.size))
    found.sort()
    return found


def bucket_exists(location: str) -> bool:
    from pyarrow import fs
    bucket = bucket_of(location)
    if not bucket:
        return True
    filesystem, _ = resolve(location)
    return filesystem.get_file_info(bucket).type == fs.FileType.Directory


def open_input_file(location: str):
    """A seekable reader (ranged reads on object stores)."""
    filesystem, path = resolve(location)
    return filesystem.open_input_file(path)


def arrow_source(location: str):
    """What pyarrow's file readers (ParquetFile) take, as a context manager: a local path itself
    (Arrow opens it), else a seekable file of the object."""
    return open_input_file(location) if is_uri(location) else contextlib.nullcontext(location)


def open_input_stream(location: str, compression: str | None = None):
    """A sequential reader, decompressing gzip or bz2 when asked."""
    import pyarrow as pa
    filesystem, path = resolve(location)
    stream = filesystem.open_input_stream(path)
    return pa.CompressedInputStream(stream, compression) if compression else stream


def open_output_stream(location: str):
    """A writer; on an object store the object appears, whole, only when it is closed."""
    filesystem, path = resolve(location)
    return filesystem.open_output_stream(path)


def make_dirs(location: str) -> None:
    if is_object_store(location):
        return
    filesystem, path = resolve(location)
    filesystem.create_dir(path, recursive=True)


def ensure_dir(location: str) -> None:
    """A directory at `location`, local path or URI (object stores need none: keys have no parents)."""
    if is_uri(location):
        make_dirs(location)
    else:
        os.makedirs(location, exist_ok=True)


def remove_tree_quietly(location: str) -> None:
    """Remove a local directory tree or a URI's prefix, ignoring failures (cleanup paths)."""
    if is_uri(location):
        delete_tree_quietly(location)
    else:
        import shutil
        shutil.rmtree(location, ignore_errors=True)


def delete_file(location: str) -> None:
    filesystem, path = resolve(location)
    filesystem.delete_file(path)


def delete_tree(location: str) -> None:
    """Remove a directory or prefix and everything below it; nothing there is no error."""
    from pyarrow import fs
    filesystem, path = resolve(location)
    info = filesystem.get_file_info(path)
    if info.type == fs.FileType.Directory:
        filesystem.delete_dir(path)
    elif info.type == fs.FileType.File:
        filesystem.delete_file(path)


def delete_tree_quietly(location: str) -> None:
    """delete_tree for cleanup paths, where a failure must not hide the error being reported."""
    try:
        delete_tree(location)
    except Exception:
        pass


def move(source: str, destination: str) -> None:
    """Rename a file (a copy and a delete on object stores: not atomic)."""
    filesystem, source_path = resolve(source)
    _, destination_path = resolve(destination)
    filesystem.move(source_path, destination_path)


def read_tail(location: str, limit: int) -> bytes:
    with open_input_file(location) as handle:
        length = handle.size()
        handle.seek(max(0, length - limit))
        return handle.read()


def upload(local_path: str, location: str) -> None:
    with open(local_path, "rb") as source, open_output_stream(location) as target:
        while True:
            block = source.read(1 << 20)
            if not block:
                break
            target.write(block)
