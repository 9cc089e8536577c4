#!/usr/bin/env python3
"""A word-count reducer written for Hadoop Streaming, unchanged: it relies on its input being
sorted by key (a key's lines together) and sums each word's counts as the word changes."""

import sys

current, total = None, 0
for line in sys.stdin:
    word, count = line.rstrip("\n").split("\t", 1)
    if word == current:
        total += int(count)
    else:
        if current is not None:
            print(f"{current}\t{total}")
        current, total = word, int(count)
if current is not None:
    print(f"{current}\t{total}")
