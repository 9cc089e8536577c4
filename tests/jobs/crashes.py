"""The MIT 6.5840 lab's crash test shape: the mapper and the reducer end their own process
(os._exit) on about a third of calls and stall on another third. Like the lab's, a map call reads
a whole file (INPUT_FORMAT = "files") and yields a few keys, so each reduce task has few calls.

Draws come from os.urandom: a replacement process is forked from the same worker, with the same
`random` state, and must draw afresh. $CRASH_STALL_S caps a stall (default 0.2 s); CRASH=0 runs the
same job without crashes or stalls (the reference). Both are read when the job is loaded, where
`run` or `submit` runs, and travel with the job."""

import os
import re
import time

INPUT_FORMAT = "files"
WORD = re.compile(r"[A-Za-z]+")
CRASHING = os.environ.get("CRASH", "1") != "0"
STALL_S = float(os.environ.get("CRASH_STALL_S", "0.2"))


def _draw() -> float:
    return int.from_bytes(os.urandom(4), "big") / 2**32


def _maybe_crash():
    if not CRASHING:
        return
    roll = _draw()
    if roll < 1 / 3:
        os._exit(1)
    if roll < 2 / 3:
        time.sleep(STALL_S * _draw())


def mapper(path, text):
    _maybe_crash()
    yield "files", os.path.basename(path)
    yield "lines", text.count("\n")
    yield "words", len(WORD.findall(text))


def reducer(key, values):
    _maybe_crash()
    # Values in the order they arrive: the files in map task order, which re-planning must keep.
    yield key, list(values) if key == "files" else sum(values)
