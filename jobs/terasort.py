"""TeraSort-style total-order sort: records are lines whose first 10 characters are the key.

The partitioner cuts the key space into ranges by the key's first character (printable ASCII,
33-126), so part-00000 < part-00001 < ... and the concatenated part files are globally sorted.
Output lines are `key<TAB>rest of the record`.

Make TeraGen-like records with datasets/generate.py (in out/, which git ignores), then sort them:

    python datasets/generate.py --kind terasort --size 2MB --output out/data/terasort
    mapreduce run jobs/terasort.py out/data/terasort --output out/sorted --reducers 4
"""

FIRST, LAST = 33, 126  # the printable ASCII range the keys are drawn from


def mapper(path, line):
    yield line[:10], line[10:]


def partitioner(key, num_reducers):
    position = min(max(ord(key[0]) - FIRST, 0), LAST - FIRST) if key else 0
    return position * num_reducers // (LAST - FIRST + 1)


def reducer(key, values):
    for value in values:
        yield key, value
