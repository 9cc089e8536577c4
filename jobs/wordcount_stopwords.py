"""Word count without stop words: the stop-word list is a side file, shipped with `--file`.

Every task finds `stopwords.txt` in its working directory (the framework fetches it once per job
on each worker); mapper_init reads it once per map task.

    mapreduce run jobs/wordcount_stopwords.py datasets/sample --file datasets/stopwords.txt --output out/wordcount-stopwords
"""

import re

WORD = re.compile(r"[A-Za-z]+")
STOP_WORDS_FILE = "stopwords.txt"  # the base name of the --file
stop_words = frozenset()


def mapper_init():
    global stop_words
    with open(STOP_WORDS_FILE, encoding="utf-8") as handle:
        stop_words = frozenset(line.strip().lower() for line in handle if line.strip())


def mapper(path, line):
    for word in WORD.findall(line.lower()):
        if word not in stop_words:
            yield word, 1


def combiner(word, counts):
    yield word, sum(counts)


def reducer(word, counts):
    yield word, sum(counts)
