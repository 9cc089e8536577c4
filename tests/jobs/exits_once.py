"""Word count whose very first mapper call (anywhere: a marker made with O_EXCL) kills its own
process; every later attempt succeeds."""

import os
import re

WORD = re.compile(r"[A-Za-z]+")
MARKER_DIR = os.environ["MARKER_DIR"]


def mapper(key, line):
    try:
        os.close(os.open(os.path.join(MARKER_DIR, "exited"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os._exit(3)
    except FileExistsError:
        pass
    for word in WORD.findall(line.lower()):
        yield word, 1


def reducer(word, counts):
    yield word, sum(counts)
