"""Sums field "n" per field "word" of JSON objects, CSV rows or Parquet rows ($FORMAT)."""

import os

INPUT_FORMAT = os.environ.get("FORMAT", "jsonl")


def mapper(path, record):
    yield record["word"], record["n"]


def reducer(word, counts):
    yield word, sum(counts)
