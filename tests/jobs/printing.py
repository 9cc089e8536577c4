"""Prints from the mapper and reducer (stdout, stderr and logging); $FAIL makes the reducer raise."""

import logging
import os
import sys


def mapper(path, line):
    print("mapper saw:", line[:15])
    logging.getLogger("job").warning("warning from the mapper")
    yield line[:1], 1


def reducer(key, counts):
    print("reducing", repr(key), file=sys.stderr)
    if os.environ.get("FAIL"):
        raise RuntimeError("reducer gives up")
    yield key, sum(counts)
