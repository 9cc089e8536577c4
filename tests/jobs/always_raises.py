"""Mapper raises on every call; leaves one marker file per call in $MARKER_DIR to count attempts."""

import os
import uuid

MARKER_DIR = os.environ.get("MARKER_DIR")


def mapper(key, value):
    if MARKER_DIR:
        open(os.path.join(MARKER_DIR, uuid.uuid4().hex), "w").close()
    raise ValueError("always raises: marked message 7f3a")


def reducer(key, values):
    yield key, sum(values)
