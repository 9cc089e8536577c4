"""Vectorised: per first letter of each word, the $STAT (sum, min or max) of word lengths."""

import os

import pyarrow as pa
import pyarrow.compute as pc

REDUCE = os.environ.get("STAT", "sum")


def map_batches(batch):
    words = pc.list_flatten(
        pc.split_pattern_regex(pc.utf8_lower(batch.column("value")), r"[^a-z]+")
    )
    words = words.filter(pc.not_equal(words, ""))
    return pa.table({"key": pc.utf8_slice_codeunits(words, 0, 1), "value": pc.utf8_length(words)})
