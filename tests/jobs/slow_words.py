"""A slow word count: each mapper call sleeps 3 ms and each reducer call $REDUCE_SLEEP s (default 2 ms), so a test can act
while tasks run. Marks the first map and reduce call of each process in $MARKER_DIR."""

import os
import re
import time

WORD = re.compile(r"[A-Za-z]+")
MARKER_DIR = os.environ["MARKER_DIR"]
REDUCE_SLEEP = float(os.environ.get("REDUCE_SLEEP", "0.002"))


def _mark(kind):
    path = os.path.join(MARKER_DIR, f"{kind}-{os.getpid()}")
    if not os.path.exists(path):
        open(path, "w").close()


def mapper(path, line):
    _mark("map")
    time.sleep(0.003)
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    _mark("reduce")
    time.sleep(REDUCE_SLEEP)
    yield word, sum(counts)
