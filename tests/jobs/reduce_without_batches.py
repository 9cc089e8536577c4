"""REDUCE on a per-record job: refused at load time."""

REDUCE = "sum"


def mapper(key, line):
    yield line, 1
