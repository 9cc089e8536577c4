"""TeraSort, vectorised map: the same output as jobs/terasort.py, with the records cut into key
and value by Arrow and each partition sorted by Arrow before the shuffle.

    mapreduce run jobs/terasort_arrow.py records.txt --output out/sorted --reducers 4
"""

import pyarrow as pa
import pyarrow.compute as pc

from jobs.terasort import partitioner, reducer  # noqa: F401  (the same range partitioner and reducer)


def map_batches(batch):
    records = batch.column("value")
    return pa.table({"key": pc.utf8_slice_codeunits(records, 0, 10),
                     "value": pc.utf8_slice_codeunits(records, 10)})

