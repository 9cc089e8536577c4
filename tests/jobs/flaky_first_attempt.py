"""Word count whose reducer, combiner and partitioner each raise once (the first call anywhere
creates a marker with O_EXCL and raises); later attempts succeed."""

import os
import re

WORD = re.compile(r"[A-Za-z]+")
MARKER_DIR = os.environ["MARKER_DIR"]


def _first_time(name):
    try:
        os.close(os.open(os.path.join(MARKER_DIR, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def mapper(key, line):
    for word in WORD.findall(line.lower()):
        yield word, 1


def combiner(word, counts):
    if _first_time("combiner"):
        raise RuntimeError("combiner fails once")
    yield word, sum(counts)


def partitioner(word, n):
    if _first_time("partitioner"):
        raise RuntimeError("partitioner fails once")
    return len(word) % n


def reducer(word, counts):
    if _first_time("reducer"):
        raise RuntimeError("reducer fails once")
    yield word, sum(counts)
