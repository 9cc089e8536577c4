"""Word count with user counters (lines and words mapped, keys reduced), each mapper call sleeping
--param sleep=SECONDS, so a job lasts long enough for a test to disturb its messages."""

import re
import time

import mapreduce

WORD = re.compile(r"[A-Za-z]+")
PARAMS = {"sleep": 0.0}


def mapper(path, line):
    mapreduce.counter("input", "lines")
    if PARAMS["sleep"]:
        time.sleep(PARAMS["sleep"])
    for word in WORD.findall(line.lower()):
        mapreduce.counter("input", "words")
        yield word, 1


def combiner(word, counts):
    yield word, sum(counts)


def reducer(word, counts):
    mapreduce.counter("output", "keys")
    yield word, sum(counts)
