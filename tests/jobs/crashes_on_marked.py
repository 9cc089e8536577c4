"""A word count whose mapper raises on every line holding BOOM, and whose reducer raises on the
word "poison": records and keys for --skip-bad-records to skip."""

import re

WORD = re.compile(r"[a-z]+")


def mapper(path, line):
    if "BOOM" in line:
        raise ValueError("this line blows up")
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    if word == "poison":
        raise RuntimeError("poisoned key")
    yield word, sum(counts)
