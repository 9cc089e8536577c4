"""TeraSort, vectorised: the same output as jobs/terasort.py, with the records cut into key and
value by Arrow, each partition sorted by Arrow, and `REDUCE = "identity"` writing every record in
key order without Python code per record.

    python datasets/generate.py --kind terasort --size 2MB --output out/data/terasort
    mapreduce run jobs/terasort_arrow.py out/data/terasort --output out/sorted-arrow --reducers 4
"""

import pyarrow as pa
import pyarrow.compute as pc

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


def partition_batches(keys, num_reducers):
    """jobs/terasort.py's range partitioner for a whole column: the first character's position in
    the printable range, scaled to the reducers. The few distinct first characters are mapped in
    Python, every key by Arrow."""
    first = pc.utf8_slice_codeunits(keys, 0, 1).combine_chunks().dictionary_encode()
    span = LAST - FIRST + 1
    lookup = [
        min(max(ord(c or " ") - FIRST, 0), LAST - FIRST) * num_reducers // span
        for c in first.dictionary.to_pylist()
    ]
    return pc.take(pa.array(lookup, pa.int32()), first.indices)
