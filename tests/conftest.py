"""Fixtures shared by the test modules (their helpers are in helpers.py)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from helpers import Cluster, write_corpus

# A shell that starts the suite in the background (`bash .ci/run &`) makes it ignore SIGINT, and
# every process it starts inherits that: the tests that press Ctrl-C on `run` and `submit` would
# see it ignored. Python's own handler is what an interactive terminal gives; exec resets it to the
# default in the processes the tests start, which then install theirs.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(scope="session", autouse=True)
def no_user_configuration(tmp_path_factory):
    """The suite ignores the configuration of whoever runs it (./mapreduce.yaml,
    ~/.config/mapreduce/config.yaml, MAPREDUCE_<SETTING> variables): every command it starts
    reads an empty file of its own, named in $MAPREDUCE_CONFIG."""
    empty = tmp_path_factory.mktemp("config") / "empty.json"
    empty.write_text("{}")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("MAPREDUCE_")]:
            patch.delenv(name)
        patch.setenv("MAPREDUCE_CONFIG", str(empty))
        yield


@pytest.fixture(autouse=True)
def private_user_dirs(tmp_path_factory, monkeypatch):
    """Every test, and every process it starts, has its own XDG config and state directories:
    the per-user key set (made on first use when no --keys is given) and the coordinator's
    default work directory live there, never in the real user's home. Processes of one test
    share them, so its coordinator, workers and clients use one key set, as one user's would."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    if "XDG_STATE_HOME" not in os.environ:
        monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))


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
