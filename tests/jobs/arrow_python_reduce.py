"""Vectorised map, Python reducer: word -> sorted distinct line lengths it appears in."""

import pyarrow as pa
import pyarrow.compute as pc


def map_batches(batch):
    lowered = pc.utf8_lower(batch.column("value"))
    lists = pc.split_pattern_regex(lowered, r"[^a-z]+")
    words = pc.list_flatten(lists)
    lengths = pc.take(pc.utf8_length(batch.column("value")), pc.list_parent_indices(lists))
    keep = pc.not_equal(words, "")
    return pa.table({"key": words.filter(keep), "value": lengths.filter(keep)})


def reducer(word, lengths):
    yield word, sorted(set(lengths))
