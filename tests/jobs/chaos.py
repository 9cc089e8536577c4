"""Word count with chaos: on each task attempt's first call, a third of attempts kill their own
process, a third sleep for a while, a third run normally (decided by a random draw)."""

import os
import random
import re
import time

WORD = re.compile(r"[A-Za-z]+")
_decided = set()


def _maybe_misbehave(ident):
    if ident in _decided:
        return
    _decided.add(ident)
    roll = random.random()
    if roll < 1 / 3:
        os._exit(17)
    if roll < 2 / 3:
        time.sleep(random.uniform(0.05, 0.4))


def mapper(path, line):
    _maybe_misbehave(("map", path))
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    _maybe_misbehave(("reduce", os.getpid()))
    yield word, sum(counts)
