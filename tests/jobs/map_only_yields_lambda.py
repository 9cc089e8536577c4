"""A map-only job whose mapper yields a key or a value (PARAMS["unpicklable"]) that cannot be
pickled (a lambda), on the third line of its input."""

PARAMS = {"unpicklable": "value"}


def mapper(path, line):
    if line != "third":
        yield line, len(line)
    elif PARAMS["unpicklable"] == "key":
        yield (lambda: line), 1
    else:
        yield line, (lambda: line)
