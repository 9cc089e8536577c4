"""Word count that leaves one marker file per mapper call and per reducer call, so a test can check
that without faults every record is mapped exactly once and every key reduced exactly once."""

import os
import re
import uuid

WORD = re.compile(r"[A-Za-z]+")
MARKER_DIR = os.environ["MARKER_DIR"]


def _mark(kind):
    open(os.path.join(MARKER_DIR, f"{kind}-{uuid.uuid4().hex}"), "w").close()


def mapper(path, line):
    _mark("map")
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    _mark("reduce")
    yield word, sum(counts)
