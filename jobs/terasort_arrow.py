"""TeraSort, vectorised: the same output as jobs/terasort.py, with the records cut into key and
value by Arrow, each partition sorted by Arrow, and `REDUCE = "identity"` writing every record in
key order without Python code per record.

The partitioner is jobs/terasort.py's: the framework's RangePartitioner, which places a whole
column of keys by Arrow's search_sorted among the split points.

    python datasets/generate.py --kind terasort --size 2MB --output out/data/terasort
    mapreduce run jobs/terasort_arrow.py out/data/terasort --output out/sorted-arrow --reducers 4
"""

import pyarrow as pa
import pyarrow.compute as pc

from mapreduce.partitioners import RangePartitioner

FIRST, LAST = 33, 126  # the printable ASCII range the keys are drawn from (as terasort.py)
REDUCE = "identity"


def map_batches(batch):
    records = batch.column("value")
    return pa.table(
        {
            "key": pc.utf8_slice_codeunits(records, 0, 10),
            "value": pc.utf8_slice_codeunits(records, 10),
        }
    )


def _split_points(num_reducers):
    """The first characters that start partitions 1..: the printable range cut into num_reducers
    equal spans (keys below it go with its first character, above it with its last; with more
    reducers than characters, some partitions stay empty), as in jobs/terasort.py."""
    span = LAST - FIRST + 1
    starts = (-(-i * span // num_reducers) for i in range(1, num_reducers))
    return [chr(FIRST + start) for start in starts if start < span]


partitioner = RangePartitioner(_split_points)
