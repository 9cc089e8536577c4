"""Map-only identity over lines: output one (path, line) per input line, in input order."""


def mapper(path, line):
    yield path, line
