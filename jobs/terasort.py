"""TeraSort-style total-order sort: records are lines whose first 10 characters are the key.

The partitioner cuts the key space into ranges by the key's first character (printable ASCII,
33-126), so part-00000 < part-00001 < ... and the concatenated part files are globally sorted.
Output lines are `key<TAB>rest of the record`.

The partitioner and reducer are the framework's ready-made ones (as Hadoop's TeraSort uses its
TotalOrderPartitioner and IdentityReducer), which the framework runs in bulk: a buffer of keys is
partitioned by bisection in C, and the reduce writes the merged runs by Arrow. The mapper is
ordinary per-record Python.

Make TeraGen-like records with datasets/generate.py (in out/, which git ignores), then sort them:

    python datasets/generate.py --kind terasort --size 2MB --output out/data/terasort
    mapreduce run jobs/terasort.py out/data/terasort --output out/sorted --reducers 4
"""

from mapreduce.partitioners import RangePartitioner
from mapreduce.reducers import identity_reducer

FIRST, LAST = 33, 126  # the printable ASCII range the keys are drawn from


def mapper(path, line):
    yield line[:10], line[10:]


def _split_points(num_reducers):
    """The first characters that start partitions 1..: the printable range cut into num_reducers
    equal spans (keys below it go with its first character, above it with its last; with more
    reducers than characters, some partitions stay empty)."""
    span = LAST - FIRST + 1
    starts = (-(-i * span // num_reducers) for i in range(1, num_reducers))
    return [chr(FIRST + start) for start in starts if start < span]


partitioner = RangePartitioner(_split_points)
reducer = identity_reducer
