"""What the worker process running this job looks like, one pair per fact (tests/test_pool.py).
The mapper runs in an executor, forked from its worker: its parent is the worker, and it has
the worker's environment and sys.path."""

import os
import sys


def mapper(key, line):
    worker = os.getppid()
    with open(f"/proc/{worker}/cmdline", "rb") as cmdline:
        command = cmdline.read().replace(b"\0", b" ").decode()
    yield "started as python -m mapreduce.worker", str("mapreduce.worker" in command)
    yield "MAPREDUCE_REDUCERS", os.environ.get("MAPREDUCE_REDUCERS", "unset")
    yield "MAPREDUCE_LOG_FORMAT", os.environ.get("MAPREDUCE_LOG_FORMAT", "unset")
    yield "sys.path[0] is the current directory", str(sys.path[0] == os.getcwd())
    yield "stdin", os.readlink(f"/proc/{worker}/fd/0")


def reducer(key, values):
    yield key, ",".join(sorted(set(values)))
