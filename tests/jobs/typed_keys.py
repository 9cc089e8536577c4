"""Mixed key types (str, int, float, tuple, bool) to check the shuffle keeps types and order."""


def mapper(path, line):
    words = line.split()
    for w in words:
        yield w, 1
        yield len(w), 1
        yield (w[:1], len(w)), 1
        yield float(len(w)) / 2, 1
    yield bool(words), 1


def combiner(key, counts):
    yield key, sum(counts)


def reducer(key, counts):
    yield key, sum(counts)
