"""Fixtures shared by the test modules (their helpers are in helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from helpers import Cluster, write_corpus


def pytest_addoption(parser):
    parser.addoption(
        "--without-speedups",
        action="store_true",
        help="Run as on a machine without a C compiler: mapreduce._speedups cannot "
        "be imported, so the shuffle uses its Python counting loop.",
    )
    parser.addoption(
        "--update-screenshot",
        action="store_true",
        help="The browser test also saves its screenshot of the status page as "
        "docs/status-page.png (the README's).",
    )


def pytest_configure(config):
    if config.getoption("--without-speedups"):
        sys.modules["mapreduce._speedups"] = None  # makes `import mapreduce._speedups` fail


@pytest.fixture
def corpus(tmp_path) -> list[Path]:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()
