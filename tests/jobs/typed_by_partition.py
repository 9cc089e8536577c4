"""Passes JSON records' values through to the reducer whose partition the record's "part" names,
so each part file gets the values of its own records (and their types) and some parts are empty."""

INPUT_FORMAT = "jsonl"


def mapper(path, record):
    yield record["part"], record["value"]


def partitioner(part, num_partitions):
    return part % num_partitions


def reducer(part, values):
    for value in values:
        yield part, value
