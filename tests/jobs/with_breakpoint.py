"""Calls breakpoint() in the mapper on the first line: only usable with --inline."""

import re

WORD = re.compile(r"[A-Za-z]+")
_stopped = []


def mapper(path, line):
    if not _stopped:
        _stopped.append(True)
        marker = "inside-the-debugger"  # noqa: F841  (the test prints it from pdb)
        breakpoint()
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    yield word, sum(counts)
