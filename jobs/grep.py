"""Grep: the input lines that match a regular expression (a map-only job).

The job has no reducer, so the mapper's output is the job's output:

    mapper(path, line)      -> (path, line) for each line where the pattern is found
                               path: str (the input file), line: str (without its line ending)

The pattern is searched with ``re.search`` (anywhere in the line, like grep; anchor it with
``^``/``$`` for whole-line matches). It is the job parameter ``pattern``, given with
``--param pattern=REGEX``; its default is the environment variable ``GREP_PATTERN``, read when
this module is imported, that is on the machine that submits the job (the value travels with the
job to the workers, so the workers' own environment does not matter).

Run it with:

    mapreduce run jobs/grep.py datasets/sample --output out/grep --param pattern='light(house)?'
    GREP_PATTERN='light(house)?' mapreduce run jobs/grep.py datasets/sample --output out/grep-env

With neither, the parameter has no value (None), so `mapreduce run` and `submit` refuse the job
before anything runs, saying to give --param pattern=...
"""

import os
import re

# Read at import time, on the submitting machine; captured with the job.
GREP_PATTERN = os.environ.get("GREP_PATTERN") or None

PARAMS = {"pattern": GREP_PATTERN}  # None (no pattern given) makes the parameter required

_compiled = {}


def _regex():
    pattern = PARAMS["pattern"]
    if not pattern:
        raise ValueError(
            "no pattern to search for: give the regular expression with "
            "--param pattern=REGEX (or set GREP_PATTERN where you run the job)"
        )
    regex = _compiled.get(pattern)
    if regex is None:
        regex = _compiled[pattern] = re.compile(pattern)
    return regex


def mapper(key, value):
    if _regex().search(value):
        yield key, value
