"""Secondary sort: words keyed by their first letter, with SORT_VALUES = True; the reducer checks
as it streams that the words arrive in order and reports how many, the first and the last. With
--param mixed=true the values of a key mix int and str, which cannot be ordered."""

import re

SORT_VALUES = True
PARAMS = {"mixed": False}
WORD = re.compile(r"[A-Za-z]+")


def mapper(path, line):
    for word in WORD.findall(line):
        yield word[0].lower(), (len(word) if PARAMS["mixed"] and len(word) == 3 else word)


def reducer(key, words):
    count, first, previous, in_order = 0, None, None, True
    for word in words:
        if previous is not None and word < previous:
            in_order = False
        first = word if first is None else first
        previous = word
        count += 1
    yield key, [count, first, previous, in_order]
