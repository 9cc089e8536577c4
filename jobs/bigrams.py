"""Bigram count: how often each pair of adjacent words occurs, for pairs seen at least twice.

Words are as in jobs/wordcount.py: maximal runs of ASCII letters (``[A-Za-z]+``), lower-cased.
Pairs are taken within a line only (the last word of a line and the first of the next are not
a pair), and across punctuation ("sea, and" gives ``("sea", "and")``).

    mapper(path, line)      -> ((w1, w2), 1) for every adjacent pair of the line
    combiner(pair, counts)  -> (pair, sum(counts))   (associative, commutative; no threshold here)
    reducer(pair, counts)   -> (pair, total) only if total >= MIN_COUNT
                               pair: tuple[str, str], total: int

Keys are tuples, not strings, which exercises the shuffle's path for non-string keys
(tuples sort element by element, so ("of", "a") comes before ("of", "the")).

Run it with:

    mapreduce run jobs/bigrams.py datasets/sample --output out/bigrams
"""

import re

MIN_COUNT = 2

WORD = re.compile(r"[A-Za-z]+")


def mapper(key, value):
    words = WORD.findall(value.lower())
    for pair in zip(words, words[1:]):
        yield pair, 1


def combiner(key, values):
    yield key, sum(values)


def reducer(key, values):
    total = sum(values)
    if total >= MIN_COUNT:
        yield key, total
