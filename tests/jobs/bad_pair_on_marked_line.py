"""Yields a bare string instead of a pair on the line that contains MARK, good pairs elsewhere."""


def mapper(key, line):
    for word in line.split():
        yield word if word == "MARK" else (word, 1)


def combiner(key, values):
    yield key, sum(values)


def reducer(key, values):
    yield key, sum(values)
