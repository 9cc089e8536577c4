"""Inverted index: for each word, the documents it occurs in.

The job reads whole files (``INPUT_FORMAT = "files"``): the mapper is called once per input
file with its path as key and its whole text as value. A document is named by the file's base
name (``os.path.basename(path)``), so two inputs with the same base name in different
directories are indexed as one document.

A word is a maximal run of ASCII letters (``[A-Za-z]+``), lower-cased, as in
jobs/wordcount.py (this file repeats the definition: a job file is loaded by path and must
stand alone).

    mapper(path, text)      -> (word, document) once per distinct word of the file, in word order
    reducer(word, docs)     -> (word, sorted list of distinct documents)
                               word: str, documents: list[str]

Run it with:

    mapreduce run jobs/inverted_index.py datasets/sample --output out/index
"""

import os
import re

INPUT_FORMAT = "files"

WORD = re.compile(r"[A-Za-z]+")


def mapper(key, value):
    document = os.path.basename(key)
    for w in sorted(set(WORD.findall(value.lower()))):  # sorted: same output every run
        yield w, document


def reducer(key, values):
    yield key, sorted(set(values))
