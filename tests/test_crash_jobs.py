"""Issue 19: a job whose code crashes at random still finishes, every time, with the output of a
run without crashes, byte for byte.

tests/jobs/crashes.py is the MIT 6.5840 lab's crash test: its mapper and reducer end their process
on about a third of calls and stall on another third. Small files are grouped into splits of
several files, which a lost attempt re-plans into one task per file; a map-only job's part files
must not show it. The two slow tests run the job 20 times each (`run`, and `submit` to a cluster),
rotating through a reduce job and map-only jobs in three output formats, and compare every
output to the same job run without crashes (CRASH=0) and to a plain sequential computation. The
last test: a job that always dies still fails, naming the piece that ran out of attempts."""

from __future__ import annotations

import json
import random
import re
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import FAST, JOBS, Cluster, kill_group, run_cli, small_splits

RUNS = 20
JOB = JOBS / "crashes.py"
WORD = re.compile(r"[A-Za-z]+")
# (output format, reducers): the reduce job, then map-only jobs whose parts must not show that a
# task was re-planned.
VARIANTS = [("text", 3), ("text", 0), ("jsonl", 0), ("parquet", 0)]
SPLITS = small_splits("2KB")  # files of 150 to 1100 bytes: two to four to a split
CRASH = {"CRASH": "1", "CRASH_STALL_S": "0.2"}


def _corpus(directory: Path) -> list[Path]:
    rng = random.Random(19)
    words = ["river", "salt", "Map", "keeper", "café", "x", "North", "light"]
    directory.mkdir()
    paths = []
    for n in range(10):
        path = directory / f"book{n:02d}.txt"
        lines = [
            " ".join(rng.choices(words, k=rng.randint(0, 9))) for _ in range(rng.randint(5, 25))
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _sequential(paths: list[Path]) -> tuple[dict, list]:
    """What the job computes, the plain way: the reduce job's totals, and the map-only job's
    pairs in input order."""
    totals: dict = {"files": []}
    counts: dict = {}
    pairs = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        totals["files"].append(path.name)
        lines, words = text.count("\n"), len(WORD.findall(text))
        counts["lines"] = counts.get("lines", 0) + lines
        counts["words"] = counts.get("words", 0) + words
        pairs += [("files", path.name), ("lines", lines), ("words", words)]
    return {**totals, **counts}, pairs


def _snapshot(output: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(output.iterdir()) if p.name.startswith("part-")}


def _read_output(output: Path, output_format: str) -> list:
    pairs = []
    for part in sorted(output.glob("part-*")):
        if output_format == "parquet":
            table = pq.read_table(part)
            pairs += [
                (key, json.loads(value))
                for key, value in zip(
                    table.column("key").to_pylist(), table.column("value").to_pylist()
                )
            ]
        elif output_format == "jsonl":
            pairs += [
                (r["key"], r["value"]) for r in map(json.loads, part.read_text().splitlines())
            ]
        else:
            for line in part.read_text(encoding="utf-8").splitlines():
                key, value = line.split("\t", 1)
                pairs.append((key, value if value.startswith("book") else json.loads(value)))
    return pairs


def _check(output: Path, variant: tuple, reference: dict, paths: list[Path]) -> None:
    output_format, reducers = variant
    totals, map_pairs = _sequential(paths)
    assert _snapshot(output) == reference[variant], (
        f"{variant}: not the output of a run without crashes"
    )
    pairs = _read_output(output, output_format)
    if reducers:
        assert dict(pairs) == totals
    else:
        assert pairs == map_pairs


def _options(variant: tuple) -> list:
    output_format, reducers = variant
    return ["-r", reducers, "--output-format", output_format, *SPLITS, "-q"]


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory):
    """The input and each variant's output from runs without crashes (the references)."""
    root = tmp_path_factory.mktemp("crashes")
    paths = _corpus(root / "books")
    reference = {}
    for variant in VARIANTS:
        out = root / f"reference-{variant[0]}-{variant[1]}"
        result = run_cli(
            "run",
            JOB,
            root / "books",
            "-o",
            out,
            "-w",
            2,
            *_options(variant),
            *FAST,
            env={"CRASH": "0"},
        )
        assert result.returncode == 0, result.stderr
        reference[variant] = _snapshot(out)
        if not variant[1]:  # map-only: a part per split, splits of several files
            assert 3 <= len(reference[variant]) <= len(paths) // 2, sorted(reference[variant])
    return root, paths, reference


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_crashing_job_finishes_with_the_same_output_every_time_in_run(crash_setup, tmp_path):
    root, paths, reference = crash_setup
    replanned = 0
    for run in range(RUNS):
        variant = VARIANTS[run % len(VARIANTS)]
        out = tmp_path / f"out{run}"
        result = run_cli(
            "-v",
            "run",
            JOB,
            root / "books",
            "-o",
            out,
            "-w",
            2,
            *_options(variant),
            *FAST,
            env=CRASH,
            timeout=120,
        )
        assert result.returncode == 0, f"run {run} ({variant}) failed:\n{result.stderr[-3000:]}"
        _check(out, variant, reference, paths)
        assert not result.leftover
        replanned += "re-planned into" in result.stderr
    assert replanned >= RUNS // 2  # the crashes did happen, and re-planned grouped splits


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_crashing_job_finishes_every_time_on_a_cluster_whose_workers_restart(crash_setup, tmp_path):
    root, paths, reference = crash_setup
    cluster = Cluster(tmp_path)
    stop = threading.Event()

    def keep_three_workers():
        # The lab's shape: workers restarted in a loop. Now and then one is killed outright too,
        # so attempts are also lost with their worker, not only with their executor.
        rng = random.Random(7)
        live = [cluster.start_worker() for _ in range(3)]
        while not stop.wait(0.1):
            if rng.random() < 0.03:
                kill_group(rng.choice(live).pid)
            for n, worker in enumerate(live):
                if worker.poll() is not None and not stop.is_set():
                    live[n] = cluster.start_worker()

    restarter = threading.Thread(target=keep_three_workers, daemon=True)
    try:
        cluster.start_coordinator(None, "-v")
        restarter.start()
        cluster.wait_for_workers(3)
        for run in range(RUNS):
            variant = VARIANTS[run % len(VARIANTS)]
            out = tmp_path / f"out{run}"
            result = cluster.submit(JOB, [root / "books"], out, *_options(variant), env=CRASH)
            assert result.returncode == 0, (
                f"submit {run} ({variant}) failed:\n{result.stderr[-3000:]}"
            )
            _check(out, variant, reference, paths)
    finally:
        stop.set()
        restarter.join(10)
        cluster.close()
    assert "re-planned into" in cluster.logs[0].read_text()


def test_a_file_whose_every_call_kills_the_process_fails_the_job_naming_its_piece(tmp_path):
    """Re-planning cannot save a job whose code always dies: the grouped split is cut into one
    task per file, the first of those loses its 10 attempts, and the message says which piece,
    how the process ended and what to do."""
    books = tmp_path / "books"
    paths = _corpus(books)
    out = tmp_path / "out"
    result = run_cli("run", JOBS / "exits_hard.py", books, "-o", out, "-w", 2, *SPLITS, *FAST)
    assert result.returncode == 1
    # Several pieces die at once on the two workers: whichever loses its 10th attempt first.
    piece = re.search(
        rf"map task (\d+), piece \d+ \({books}/(book\d\d\.txt)\) failed: ", result.stderr
    )
    assert piece, result.stderr  # a piece: its grouped task was cut into one task per file
    assert books / piece.group(2) in paths
    assert "the process running it died 10 times (the last time it exited with status 3)" in (
        result.stderr
    )
    assert "mapreduce run --inline" in result.stderr
    assert not out.exists() and not result.leftover
