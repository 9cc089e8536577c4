"""Total-order sort of text lines by their first word, with sampled range partitioning.

`setup` runs on the submitting side before the job is shipped (like Hadoop's InputSampler): it
samples first words from the inputs and picks reducers-1 boundaries, so every part file holds a
contiguous key range: part-00000 < part-00001 < ... and the parts concatenated are sorted, whatever
the key distribution (unlike the fixed first-character ranges of jobs/terasort.py).

    mapreduce run jobs/total_sort.py datasets/sample --output out/sorted --reducers 4
"""

import bisect
import random

SAMPLE_LINES = 10_000
BOUNDARIES = []  # filled by setup(); travels to the workers with the job


def setup(inputs, num_reducers):
    rng = random.Random(0)  # the same sample, so the same parts, every run
    sample = []
    for path in inputs:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for seen, line in enumerate(handle):
                key = _key(line)
                if len(sample) < SAMPLE_LINES:
                    sample.append(key)
                elif (slot := rng.randrange(seen + 1)) < SAMPLE_LINES:
                    sample[slot] = key  # reservoir sampling: fair over all lines
    sample.sort()
    BOUNDARIES[:] = (
        [sample[len(sample) * i // num_reducers] for i in range(1, num_reducers)] if sample else []
    )


def _key(line):
    words = line.split(maxsplit=1)
    return words[0] if words else ""


def mapper(path, line):
    yield _key(line), line


def partitioner(key, num_reducers):
    return min(bisect.bisect_right(BOUNDARIES, key), num_reducers - 1)


def reducer(key, lines):
    for line in lines:
        yield key, line
