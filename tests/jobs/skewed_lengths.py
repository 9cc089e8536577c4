"""Issue 21's skewed job: every word's length under the one key "all" (no combiner), summed by a
reducer that iterates over its values and reports what it was given. With --param key=word
each word is its own key instead (no skew)."""

import re

PARAMS = {"key": "all"}
WORD = re.compile(r"[A-Za-z]+")


def mapper(path, line):
    for word in WORD.findall(line):
        yield ("all" if PARAMS["key"] == "all" else word), len(word)


def reducer(key, values):
    lazy = iter(values) is values and not isinstance(values, (list, tuple))
    total = count = 0
    for value in values:
        total += value
        count += 1
    yield key, [total, count, type(values).__name__, lazy]
