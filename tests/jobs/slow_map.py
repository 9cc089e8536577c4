"""One split's map sleeps for a long time on its first attempt (a straggler); its backup runs fast."""

import os
import re

WORD = re.compile(r"[A-Za-z]+")
MARKER_DIR = os.environ["MARKER_DIR"]
_first = set()


def mapper(path, line):
    if path.endswith("slow.txt") and path not in _first:
        _first.add(path)
        try:
            os.close(os.open(os.path.join(MARKER_DIR, "slow-started"), os.O_CREAT | os.O_EXCL))
            import time

            time.sleep(600)
        except FileExistsError:
            pass
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    yield word, sum(counts)
