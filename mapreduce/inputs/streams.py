"""Opening an input file: its raw bytes (seekable, for cutting at offsets) or a stream of its
content, decompressed when its name ends in .gz or .bz2. Local paths and URIs alike.
"""

from __future__ import annotations

import os

from .. import storage

COMPRESSED = {".gz": "gzip", ".bz2": "bz2"}  # decompressed on the fly; never cut: one split a file


def compression_of(path: str) -> str | None:
    path = storage.path_part(path)  # "s3://b/x.gz?scheme=http" is a .gz object
    return COMPRESSED.get(os.path.splitext(path)[1].lower())


def open_raw(path: str):
    """The file's bytes, seekable (on an object store each read is a ranged request)."""
    return storage.open_input_file(path)


def open_input(path: str):
    """The file's bytes, decompressed when it is .gz or .bz2."""
    return storage.open_input_stream(path, compression_of(path))
