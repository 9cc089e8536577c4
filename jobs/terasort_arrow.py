"""TeraSort, vectorised map: the same output as jobs/terasort.py, with the records cut into key
and value by Arrow and each partition sorted by Arrow before the shuffle.

    mapreduce run jobs/terasort_arrow.py records.txt --output out/sorted --reducers 4
"""

import pyarrow as pa
import pyarrow.compute as pc

FIRST, LAST = 33, 126       # the printable ASCII range the keys are drawn from


def map_batches(batch):
    records = batch.column("value")
    return pa.table({"key": pc.utf8_slice_codeunits(records, 0, 10),
                     "value": pc.utf8_slice_codeunits(records, 10)})


def partitioner(key, num_reducers):
    position = min(max(ord(key[0]) - FIRST, 0), LAST - FIRST) if key else 0
    return position * num_reducers // (LAST - FIRST + 1)


def reducer(key, values):
    for value in values:
        yield key, value
