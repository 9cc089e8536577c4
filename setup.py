"""Only the optional C extension lives here; everything else is in setup.cfg.

mapreduce._speedups counts a chunk of map output pairs in C (see mapreduce/_speedups.c). It is
optional: without a C compiler the install still succeeds and mapreduce/shuffle/writer.py uses its
Python loop.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("mapreduce._speedups", ["mapreduce/_speedups.c"], optional=True)])
