"""Word count with user counters; the first reduce attempt anywhere counts a key and then fails,
so its counts must not reach the job's totals."""

import os
import re

import mapreduce

WORD = re.compile(r"[A-Za-z]+")
MARKER_DIR = os.environ["MARKER_DIR"]


def mapper(path, line):
    mapreduce.counter("input", "lines")
    for word in WORD.findall(line.lower()):
        mapreduce.counter("input", "words")
        yield word, 1


def reducer(word, counts):
    mapreduce.counter("output", "keys")
    try:
        os.close(os.open(os.path.join(MARKER_DIR, "failed-once"), os.O_CREAT | os.O_EXCL))
        raise RuntimeError("first reduce attempt fails after counting")
    except FileExistsError:
        pass
    yield word, sum(counts)
