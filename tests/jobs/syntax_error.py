"""A job module with a syntax error on line 4."""


def mapper(key, value)
    yield key, value
