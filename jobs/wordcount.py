"""Word count: how many times each word occurs in the input.

A word is a maximal run of ASCII letters (``[A-Za-z]+``), lower-cased, so "The", "the" and
"THE," all count as ``the`` and "don't" is the two words ``don`` and ``t``.

    mapper(path, line)      -> (word, 1) for every word of the line
    combiner(word, counts)  -> (word, sum(counts))   (map side; associative and commutative)
    reducer(word, counts)   -> (word, total)         word: str, total: int

Run it with:

    mapreduce run jobs/wordcount.py datasets/sample --output out/wordcount

The mapper is the benchmark's hot path, so it does as little Python work per word as it can:
one precompiled regex, one ``lower()`` per line, one ``findall`` per line.
"""

import re

WORD = re.compile(r"[A-Za-z]+")


def mapper(key, value):
    for w in WORD.findall(value.lower()):
        yield w, 1


def combiner(key, values):
    yield key, sum(values)


def reducer(key, values):
    yield key, sum(values)
