"""The command itself: how it is started, its version, where -v may go, how jobs are named."""

from __future__ import annotations

import subprocess
import sys

import mapreduce
from helpers import FAST, ROOT, part_files, run_cli


def test_python_dash_m_mapreduce_and_the_version():
    for command in (
        [sys.executable, "-m", "mapreduce", "--version"],
        [sys.executable, "-m", "mapreduce", "-V"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"mapreduce, version {mapreduce.__version__}"


def test_verbose_is_accepted_after_the_subcommand(tmp_path):
    sample = ROOT / "datasets" / "sample"
    result = run_cli(
        "run",
        "-v",
        ROOT / "jobs" / "wordcount.py",
        sample,
        "-o",
        tmp_path / "out",
        "-w",
        2,
        "-q",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    assert "mapreduce.coordinator INFO" in result.stderr and "assigned to" in result.stderr
    quiet = run_cli(
        "run", ROOT / "jobs" / "wordcount.py", sample, "-o", tmp_path / "out2", "-w", 2, "-q", *FAST
    )
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr, quiet.stderr


def test_examples_are_not_an_installed_package_and_are_named_from_the_current_directory(tmp_path):
    """jobs/ is the examples folder, not a package installed into site-packages: a job is its
    file's path, or a module name importable from where the command runs."""
    sample = ROOT / "datasets" / "sample"
    elsewhere = run_cli("run", "jobs.wordcount", sample, "-o", tmp_path / "a", "-q", cwd=tmp_path)
    assert elsewhere.returncode == 1 and "not found" in elsewhere.stderr, elsewhere.stderr
    (tmp_path / "myjobs").mkdir()
    (tmp_path / "myjobs" / "count.py").write_text((ROOT / "jobs" / "wordcount.py").read_text())
    result = run_cli(
        "run", "myjobs.count", sample, "-o", tmp_path / "b", "-w", 2, "-q", *FAST, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    by_path = run_cli(
        "run", ROOT / "jobs" / "wordcount.py", sample, "-o", tmp_path / "c", "-w", 2, "-q", *FAST
    )
    assert by_path.returncode == 0, by_path.stderr
    assert [p.read_bytes() for p in part_files(tmp_path / "b")] == [
        p.read_bytes() for p in part_files(tmp_path / "c")
    ]
