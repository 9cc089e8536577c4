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
    if pc.all(pc.string_is_ascii(records)).as_py():
        # TeraGen's records are ASCII, where a character is a byte: cut the bytes, without
        # finding where each character starts (about twice as fast). (The value is the record
        # with its first 10 bytes replaced by nothing: binary_slice(raw, 10) fails on records
        # of 10 bytes or fewer in pyarrow 26.)
        raw = records.cast(pa.binary() if records.type == pa.string() else pa.large_binary())
        key, value = pc.binary_slice(raw, 0, 10), pc.binary_replace_slice(raw, 0, 10, "")
        return pa.table({"key": key.cast(records.type), "value": value.cast(records.type)})
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
