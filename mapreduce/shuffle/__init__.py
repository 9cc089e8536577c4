"""The shuffle: map output partitioned by reducer, sorted by key, stored as Arrow IPC runs, and merged
back into key groups for each reducer.

A map task feeds its (key, value) pairs to a `MapOutputWriter`; a reduce task calls
`iter_partition_groups` with every run of its partition (from every map task) and gets the keys in
increasing order, each with a lazy iterator over its values. One concern per module:

  partition.py  which reducer a key goes to (the stable default partition, in bulk too)
  ordering.py   which keys are the same and how keys sort (canonical key bytes, mixed-type order)
  keysort.py    the stable sort order of an Arrow column of keys (a radix sort for strings)
  runfile.py    the run file: encoding, RunWriter, RunReader, ShuffleReadError
  writer.py     MapOutputWriter: checking, combining, spilling a map task's pairs (with the
                optional C counting loop, mapreduce._speedups)
  merge.py      merging one partition's runs back into key order

This package exports what the rest of the framework uses.
"""

from .keysort import key_order
from .merge import (
    count_records,
    iter_partition_groups,
    iter_partition_slices,
    natively_mergeable,
)
from .partition import partitions_of, stable_partition, stable_partition_array
from .runfile import (
    RunReader,
    RunWriter,
    ShuffleReadError,
    checked_as_shuffled,
    read_run_table,
    write_run_file,
)
from .writer import MapOutput, MapOutputWriter

__all__ = [
    "MapOutput",
    "MapOutputWriter",
    "RunReader",
    "RunWriter",
    "ShuffleReadError",
    "checked_as_shuffled",
    "count_records",
    "iter_partition_groups",
    "iter_partition_slices",
    "key_order",
    "natively_mergeable",
    "partitions_of",
    "read_run_table",
    "stable_partition",
    "stable_partition_array",
    "write_run_file",
]
