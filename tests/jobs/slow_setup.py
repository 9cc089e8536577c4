"""A word count whose setup() takes 1.5 s (as sampling the input for split points can): the
run's workers, already started, wait that long for their first task (tests/test_pool.py)."""

import re
import time

WORD = re.compile(r"[A-Za-z]+")


def setup(inputs, num_reducers):
    time.sleep(1.5)


def mapper(key, line):
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    yield word, sum(counts)
