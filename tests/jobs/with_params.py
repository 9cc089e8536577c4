"""Declared parameters of each type: words at least MIN_LENGTH long, optionally upper-cased,
each counted WEIGHT times, with a SUFFIX on every key."""

import re

PARAMS = {"min_length": 1, "upper": False, "weight": 1.0, "suffix": ""}
WORD = re.compile(r"[A-Za-z]+")


def mapper(path, line):
    for word in WORD.findall(line.lower()):
        if len(word) >= PARAMS["min_length"]:
            key = word.upper() if PARAMS["upper"] else word
            yield key + PARAMS["suffix"], PARAMS["weight"]


def reducer(key, weights):
    yield key, sum(weights)
