"""Only the optional C extension lives here; everything else is in setup.cfg.

mapreduce._speedups is the C versions of the hot loops: the module is mapreduce/_speedups.c (its
method table), its functions are in mapreduce/_speedups_src/, one concern a file. It is
optional: without a C compiler the install still succeeds and every caller uses its Python loop.
"""

from pathlib import Path

from setuptools import Extension, setup

PARTS = sorted(str(path) for path in Path("mapreduce/_speedups_src").glob("*.c"))

setup(
    ext_modules=[
        Extension(
            "mapreduce._speedups",
            ["mapreduce/_speedups.c", *PARTS],
            depends=["mapreduce/_speedups_src/speedups.h"],
            optional=True,
        )
    ]
)
