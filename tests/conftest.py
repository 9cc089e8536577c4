"""Fixtures shared by the test modules (their helpers are in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import Cluster, write_corpus


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
