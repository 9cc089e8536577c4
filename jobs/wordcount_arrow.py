"""Word count, vectorised: the same result as jobs/wordcount.py without Python code per word.

`map_batches` receives an Arrow RecordBatch of lines (columns `key`: the file's path, `value`: the
line) and returns a table of words; `REDUCE = "count"` makes the framework count rows per key with
Arrow, on the map side (like a combiner) and again on the reduce side.

    mapreduce run jobs/wordcount_arrow.py datasets/sample --output out/wordcount-arrow
"""

import pyarrow as pa
import pyarrow.compute as pc

REDUCE = "count"


def map_batches(batch):
    # Lower-case first, then split on anything that is not a-z: the words are the [A-Za-z]+ runs
    # of the lower-cased line, exactly as in jobs/wordcount.py.
    lowered = pc.utf8_lower(batch.column("value"))
    words = pc.list_flatten(pc.split_pattern_regex(lowered, r"[^a-z]+"))
    return pa.table({"key": words.filter(pc.not_equal(words, ""))})
