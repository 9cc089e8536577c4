"""Tests of mapreduce.sizes: sizes as users write them (--split-size 64MiB) and as messages show them."""

import pytest

from mapreduce.sizes import parse_size, size_text

MiB = 1024 * 1024


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1000", 1000),
        ("64MB", 64 * MiB),
        ("64MiB", 64 * MiB),
        ("64m", 64 * MiB),
        ("64 mb", 64 * MiB),
        ("1.5GB", 1536 * MiB),
        ("512k", 512 * 1024),
        ("512KiB", 512 * 1024),
        ("2T", 2 * 1024**4),
        ("100b", 100),
        (" 7 ", 7),
        (".5K", 512),
        ("9007199254740993", 9007199254740993),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "64XB", "0", "-5", "0.1", "1e6", "64 ib", "MB", "1.2.3", "5 5"]
)
def test_parse_size_rejects_invalid_text(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    "size, text",
    [
        (1, "1 byte"),
        (1000, "1000 bytes"),
        (1024, "1 KiB"),
        (1536, "1536 bytes"),
        (64 * 1024, "64 KiB"),
        (64 * MiB, "64 MiB"),
        (MiB + 1024, "1025 KiB"),
    ],
)
def test_size_text(size, text):
    assert size_text(size) == text
