"""Sizes in bytes as users write and read them: "64MiB" on the command line, "64 KiB" in messages;
and durations in seconds as they write them: "5s", "500ms", "2m" or a plain number of seconds.

K, M, G and T are 1024-based throughout, as the framework's own defaults are counted.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SIZE_PATTERN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(i?b)?|(b))?\s*", re.IGNORECASE)
_UNIT_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """Bytes in a size such as "64MB", "64MiB", "64m", "1.5GB", "512k" or "1000".

    K, M, G and T mean 1024-based multiples with or without "B"/"iB": that is what users of
    --split-size expect, and the framework's own defaults are counted that way.
    """
    match = _SIZE_PATTERN.fullmatch(str(text))
    if not match:
        raise ValueError(
            f"invalid size {text!r}: use a number of bytes, or a number followed by "
            f"K, M, G or T (1024-based), e.g. 64MB, 512k or 1.5G"
        )
    number, unit = match.group(1), (match.group(2) or "").lower()
    # Fraction keeps large byte counts exact, where a float would round them.
    size = int(Fraction(number) * 1024 ** _UNIT_POWERS.get(unit, 0))
    if size <= 0:
        raise ValueError(f"invalid size {text!r}: it must be at least 1 byte")
    return size


def size_text(size: int) -> str:
    """A byte count as a message shows it: "64 MiB", "64 KiB" when it is a whole number of them,
    else "1000 bytes" (or "1 byte")."""
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} byte" + ("" if size == 1 else "s")


_DURATION_PATTERN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "5s", "500ms", "2m", "1h", "1.5" or "0.1s" (no unit: seconds)."""
    match = _DURATION_PATTERN.fullmatch(str(text))
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a number of seconds, or a number followed by "
            f"ms, s, m or h, e.g. 5s, 500ms or 2m"
        )
    return float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "s").lower()]
