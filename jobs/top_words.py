"""Two steps: a word count, then the global top N words (N = PARAMS["n"], default 10).

Step 1 is jobs/wordcount.py's word count (written out here: an example job is one file that
travels to the workers by value, importing nothing from `jobs`); step 2 sends every (word,
count) to one key so a single reducer sees them all and keeps the N largest. The counts flow from step 1 to step 2 as
Arrow files; only step 2 writes the output (part-00000 holds the ranking, other parts are empty).

    mapreduce run jobs/top_words.py datasets/sample --output out/top --param n=5
"""

import heapq
import re

WORD = re.compile(r"[A-Za-z]+")
PARAMS = {"n": 10}


def words(_, line):
    for word in WORD.findall(line.lower()):
        yield word, 1


def total(word, counts):
    yield word, sum(counts)


def to_one_key(word, count):
    yield "top", (count, word)


def top_n(_, pairs):
    # Most frequent first; ties broken alphabetically so the result is the same every run.
    for count, word in heapq.nsmallest(PARAMS["n"], pairs, key=lambda p: (-p[0], p[1])):
        yield word, count


STEPS = [
    {"mapper": words, "combiner": total, "reducer": total},
    {"mapper": to_one_key, "reducer": top_n},
]
