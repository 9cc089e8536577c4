#!/usr/bin/env python3
"""A word-count mapper written for Hadoop Streaming, unchanged: lines on stdin, word<TAB>1 out."""

import sys

for line in sys.stdin:
    for word in line.strip().split():
        print(f"{word.lower()}\t1")
