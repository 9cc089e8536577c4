"""The mapper yields bare words instead of (key, value) pairs."""


def mapper(key, line):
    for word in line.split():
        yield word


def reducer(key, values):
    yield key, sum(values)
