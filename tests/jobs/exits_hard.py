"""Every attempt kills its own process: the task must fail after 10 lost attempts."""

import os


def mapper(key, value):
    os._exit(3)


def reducer(key, values):
    yield key, sum(values)
