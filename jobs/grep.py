"""Grep: the input lines that match a regular expression (a map-only job).

The job has no reducer, so the mapper's output is the job's output:

    mapper(path, line)      -> (path, line) for each line where the pattern is found
                               path: str (the input file), line: str (without its line ending)

The pattern is searched with ``re.search`` (anywhere in the line, like grep; anchor it with
``^``/``$`` for whole-line matches) and comes from, in this order:

1. ``PARAMS["pattern"]``, a job parameter (None unless set by whoever runs the job);
2. the environment variable ``GREP_PATTERN``, read when this module is imported, that is on
   the machine that submits the job. The value travels with the job to the workers, so the
   workers' own environment does not matter.

Run it with:

    GREP_PATTERN='light(house)?' mapreduce run jobs/grep.py datasets/sample --output out/grep

Without a pattern, importing the module still works, but the first call of the mapper raises
ValueError saying how to give one.
"""

import os
import re

PARAMS = {"pattern": None}

# Read at import time, on the submitting machine; captured with the job.
GREP_PATTERN = os.environ.get("GREP_PATTERN")

_compiled = {}


def _regex():
    pattern = PARAMS["pattern"] or GREP_PATTERN
    if not pattern:
        raise ValueError("set GREP_PATTERN=... to the regular expression to search for")
    regex = _compiled.get(pattern)
    if regex is None:
        regex = _compiled[pattern] = re.compile(pattern)
    return regex


def mapper(key, value):
    if _regex().search(value):
        yield key, value
