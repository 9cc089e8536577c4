"""mapreduce.pairs: the one check that user code yielded (key, value) pairs, used by every writer."""

from __future__ import annotations

import pytest

from mapreduce.errors import RecordError
from mapreduce.output import part_writer
from mapreduce.pairs import as_pair, as_pairs


class Pair(tuple):
    """A tuple subclass (a namedtuple, say): accepted, and copied to a plain tuple."""


def test_pairs_are_returned_as_plain_tuples():
    pair = ("k", 1)
    assert as_pair(pair, "mapper") is pair
    for item in (["k", 1], Pair(("k", 1))):
        assert type(as_pair(item, "mapper")) is tuple and as_pair(item, "mapper") == ("k", 1)
    assert list(as_pairs([("a", 1), ["b", 2]], "reducer")) == [("a", 1), ("b", 2)]


class BadRepr:
    def __repr__(self):
        raise ValueError("no repr")


@pytest.mark.parametrize(
    "item, shown",
    [
        ("word", "'word' of type str"),
        (("a", 1, 2), "('a', 1, 2) of type tuple"),
        (None, "None of type NoneType"),
        ("x" * 100, "'" + "x" * 76 + "... of type str"),
        (BadRepr(), "<BadRepr object with a failing repr> of type BadRepr"),
    ],
)
def test_anything_else_is_refused_naming_the_producer_and_the_item(item, shown):
    for producer in ("mapper", "combiner", "reducer"):
        with pytest.raises(RecordError) as caught:
            list(as_pairs([("ok", 1), item], producer))
        assert str(caught.value).startswith(
            f"the {producer} yielded {shown}; it must yield (key, value) pairs: write `yield key, "
        )


@pytest.mark.parametrize("output_format", ["text", "jsonl", "parquet", "arrow"])
def test_every_part_writer_refuses_with_the_same_message(tmp_path, output_format):
    writer = part_writer(str(tmp_path), 0, output_format)
    message = r"^the reducer yielded 7 of type int; it must yield \(key, value\) pairs: write "
    with pytest.raises(RecordError, match=message) as caught:
        writer.write_pairs([("a", 1), 7], "reducer")
    writer.close(caught.value)
