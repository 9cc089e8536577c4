"""The mapper yields a value that cannot be pickled (a lambda)."""


def mapper(key, line):
    yield "k", (lambda: line)


def reducer(key, values):
    yield key, len(list(values))
