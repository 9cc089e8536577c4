"""Input discovery: the files that the INPUT arguments (files, directories, globs, URIs) name.

Names starting with '.' or '_' are skipped inside a directory or prefix (so a previous job's
output, with _SUCCESS and _logs/, is a valid input, as in Hadoop), unless named outright. A
text input with a NUL byte near its start looks binary.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from dataclasses import dataclass
from pathlib import PurePath
from typing import Iterator, Sequence

from .. import storage
from ..defaults import BINARY_CHECK_BYTES
from ..errors import InputError, MapReduceError
from .streams import open_input

_GLOB_CHARS = "*?["
_SKIPPED_NAME_STARTS = (".", "_")
_SKIPPED_NOTE = "names starting with '.' or '_' are skipped"


@dataclass(frozen=True)
class InputFile:
    """One input file: its path in the user's spelling, and its size when listing it told it.

    Listing an object store prefix gives every object's size with its name, so planning needs no
    request per object (a HEAD each: minutes for many thousands of objects). None: planning asks.
    """

    path: str
    size: int | None = None


def expand_inputs(inputs: Sequence[str | os.PathLike] | str | os.PathLike) -> list[InputFile]:
    """The input files named by files, directories, globs and URIs.

    Inputs keep the order given, each directory's or glob's files sorted; a file reached twice
    counts once, where it was first reached.
    """
    # One path passed bare would otherwise be iterated character by character.
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise InputError("no input was given: pass at least one input file, directory or glob")
    found: list[InputFile] = []
    seen: set[str] = set()
    for item in items:
        for file in _expand_one(storage.normalize(os.fspath(item))):
            identity = file.path if storage.is_uri(file.path) else os.path.realpath(file.path)
            if identity not in seen:
                seen.add(identity)
                found.append(file)
    return found


def _expand_one(item: str) -> list[InputFile]:
    if storage.is_uri(item):
        return _expand_uri(item)
    paths = _expand_glob(item) if is_pattern(item) else _expand_path(item)
    return [InputFile(path) for path in paths]


def is_pattern(item: str) -> bool:
    """True when an input is taken as a glob: a local path with *, ? or [ that names no existing
    file (a real file whose name contains '[', say "a[1].txt", is taken literally)."""
    return not storage.is_uri(item) and _is_glob(item) and not os.path.lexists(item)


def _expand_uri(uri: str) -> list[InputFile]:
    """An object (file), or every file below a prefix (directory), skipping names that start with
    '.' or '_' as for local directories. URIs take no globs: '?' starts a URI's query."""
    from pyarrow.fs import FileType

    try:
        info = storage.file_info(uri)
        if info.type == FileType.File:
            return [InputFile(uri, info.size)]
        if info.type == FileType.Directory:
            files = [
                InputFile(found, size)
                for found, relative, size in storage.list_files(uri)
                if not any(map(_is_skipped_name, relative.split("/")))
            ]
            if not files:
                raise InputError(
                    f"input directory {uri!r} contains no files ({_SKIPPED_NOTE}); "
                    f"put input files in it or pass other inputs"
                )
            return files
        if not storage.bucket_exists(uri):
            raise InputError(
                f"input {uri!r} does not exist: there is no bucket "
                f"'{storage.bucket_of(uri)}' at that endpoint; check the spelling, "
                f"the endpoint (AWS_ENDPOINT_URL) and the credentials"
            )
    except MapReduceError as exc:
        raise InputError(exc.paragraph()) from None
    except Exception as exc:
        raise InputError(storage.describe_error(uri, "read input", exc).paragraph()) from None
    raise InputError(
        f"input path {uri!r} does not exist; check the spelling (no object and no "
        f"prefix of that name)"
    )


def _is_glob(text: str) -> bool:
    return any(char in text for char in _GLOB_CHARS)


def _expand_path(path: str) -> list[str]:
    info = _stat_input(path)
    if stat.S_ISDIR(info.st_mode):
        files = _files_under(path)
        if not files:
            raise InputError(
                f"input directory {path!r} contains no files ({_SKIPPED_NOTE}); "
                f"put input files in it or pass other inputs"
            )
        return files
    if stat.S_ISREG(info.st_mode):
        _check_readable(path)
        return [path]
    raise InputError(
        f"input path {path!r} is neither a regular file nor a directory "
        f"(a device, pipe or socket?); pass files or directories instead"
    )


def _stat_input(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise InputError(
                f"input path {path!r} is a symbolic link to something that does not "
                f"exist; fix the link or leave it out"
            ) from None
        raise InputError(
            f"input path {path!r} does not exist; check the spelling and the "
            f"current directory ({os.getcwd()})"
        ) from None
    except PermissionError:
        raise InputError(
            f"input path {path!r} cannot be read: permission denied on it or on a "
            f"directory above it; fix the permissions or leave it out"
        ) from None
    except OSError as exc:
        raise InputError(
            f"input path {path!r} cannot be read ({exc.strerror}); check it or leave it out"
        ) from None


def _check_readable(path: str) -> None:
    if not os.access(path, os.R_OK):
        raise InputError(
            f"input file {path!r} is not readable (permission denied); "
            f"fix its permissions (chmod +r) or leave it out"
        )


def _files_under(top: str) -> list[str]:
    """Sorted readable regular files below `top`, skipping names starting with '.' or '_'.

    Skipping '_' names makes a previous job's output directory (with _SUCCESS, _logs/) a valid
    input, as in Hadoop.
    """
    files = []
    for directory, subdirectories, names in _walk_once(top):
        subdirectories[:] = [name for name in subdirectories if not _is_skipped_name(name)]
        for name in names:
            path = os.path.join(directory, name)
            if not _is_skipped_name(name) and os.path.isfile(path):
                files.append(path)
    files.sort()
    for path in files:
        _check_readable(path)
    return files


def _walk_once(top: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk following symlinked directories, but entering each real directory only once, so a
    link pointing back up the tree does not loop forever."""
    visited: set[str] = set()
    for directory, subdirectories, names in os.walk(
        top, onerror=_raise_unreadable_directory, followlinks=True
    ):
        real = os.path.realpath(directory)
        if real in visited:
            subdirectories[:] = []
            continue
        visited.add(real)
        yield directory, subdirectories, names


def _raise_unreadable_directory(error: OSError) -> None:
    raise InputError(
        f"input directory {error.filename!r} cannot be listed ({error.strerror}); "
        f"fix its permissions or leave it out"
    )


def _is_skipped_name(name: str) -> bool:
    return name.startswith(_SKIPPED_NAME_STARTS)


def _expand_glob(pattern: str) -> list[str]:
    files: list[str] = []
    skipped_any = False
    for match in sorted(glob.glob(pattern, recursive=True)):
        if _glob_picked_skipped_name(pattern, match):
            skipped_any = True
        elif os.path.isdir(match):
            files.extend(_files_under(match))
        elif os.path.isfile(match):
            _check_readable(match)
            files.append(match)
    if not files:
        note = f" ({_SKIPPED_NOTE})" if skipped_any else ""
        raise InputError(
            f"input glob {pattern!r} matched no files{note}; check the pattern and "
            f"the current directory ({os.getcwd()})"
        )
    return sorted(dict.fromkeys(files))


def _glob_picked_skipped_name(pattern: str, match: str) -> bool:
    """True when a wildcard reached a name starting with '.' or '_' that the pattern did not ask for.

    So `out/*` skips out/_SUCCESS and out/_logs like a directory input does, while `out/_*` or
    `_staging/*.txt` still reach such names because the pattern spells them out.
    """
    asked = [part for part in PurePath(pattern).parts if _is_skipped_name(part)]
    for part in PurePath(match).parts:
        if part == ".." or not _is_skipped_name(part):
            continue
        if not any(fnmatch.fnmatchcase(part, wanted) for wanted in asked):
            return True
    return False


def looks_binary(path: str) -> bool:
    """Whether an input read as text looks binary: a NUL byte in its first BINARY_CHECK_BYTES
    (decompressed), the test git and grep use. A file that cannot be read says False here; its
    task reports why."""
    try:
        with open_input(path) as file:
            head = file.read(BINARY_CHECK_BYTES)
    except Exception:
        return False
    return b"\0" in head
