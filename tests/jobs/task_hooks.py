"""Every per-task hook: in-mapper combining (mapper_init/mapper_final), a combiner with its own
state, and a reducer that adds a grand total in reducer_final. Counters say how often each ran."""

import re

import mapreduce

WORD = re.compile(r"[A-Za-z]+")
counts = None
combined = None
total = None


def mapper_init():
    global counts
    counts = {}
    mapreduce.counter("hooks", "mapper_init")


def mapper(path, line):
    for word in WORD.findall(line.lower()):
        counts[word] = counts.get(word, 0) + 1  # nothing yielded per record
    return ()


def mapper_final():
    mapreduce.counter("hooks", "mapper_final")
    yield from counts.items()


def combiner_init():
    global combined
    combined = 0
    mapreduce.counter("hooks", "combiner_init")


def combiner(word, values):
    global combined
    combined += 1
    yield word, sum(values)


def combiner_final():
    mapreduce.counter("hooks", "combiner_final")
    return [("~combined", 1)]


def reducer_init():
    global total
    total = 0
    mapreduce.counter("hooks", "reducer_init")


def reducer(word, values):
    global total
    value = sum(values)
    if not word.startswith("~"):
        total += value
        yield word, value


def reducer_final():
    mapreduce.counter("hooks", "reducer_final")
    yield "~total", total
