"""Helpers the test modules share (`from helpers import ...`; setup.cfg puts tests/ on pytest's
pythonpath): run the real CLI in its own process group, references computed the plain way, a
cluster of real processes, and the shuffle's write-and-read-back. Fixtures are in conftest.py."""

from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "tests" / "jobs"
# Short heartbeats so dead or hung workers are noticed in a fraction of a second.
FAST = ["--heartbeat-interval", "0.1", "--liveness", "5"]
WORD = re.compile(r"[A-Za-z]+")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    leftover: bool  # processes of the run's process group still alive after it exited


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(group == pgid for _, _, group in live_processes())


def live_processes():
    """(pid, parent pid, process group) of every process that has not exited; zombies count as
    gone: they have exited and only wait to be reaped."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                yield int(entry.name), int(fields[1]), int(fields[2])


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start_cli(args, env=None, cwd=None, module="mapreduce.cli") -> subprocess.Popen:
    """The CLI in its own process group; `module` may be a launcher under tests/ (for example
    `faulty_cli`, which installs a test hook first)."""
    env = {**os.environ, **(env or {})}
    if module != "mapreduce.cli":
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")])
        )
    return subprocess.Popen(
        [sys.executable, "-m", module, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=cwd or ROOT,
        env=env,
    )


def finish_cli(proc: subprocess.Popen, timeout: float) -> Result:
    try:
        out, err = proc.communicate(timeout=timeout)
        deadline = time.monotonic() + 3
        while process_group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return Result(proc.returncode, out, err, process_group_alive(proc.pid))
    finally:
        kill_group(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_cli(*args, env=None, timeout=90, cwd=None, module="mapreduce.cli") -> Result:
    return finish_cli(start_cli(args, env, cwd, module), timeout)


def children_of(pid: int) -> list[int]:
    return [child for child, parent, _ in live_processes() if parent == pid]


def wordcount_reference(paths) -> dict:
    counts = collections.Counter()
    for path in paths:
        counts.update(WORD.findall(Path(path).read_bytes().decode("utf-8", "replace").lower()))
    return dict(counts)


def reference_lines(path) -> list[str]:
    """The plain reading of a text file's lines: split on \\n, drop one \\r before it."""
    text = Path(path).read_bytes().decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def part_files(output: Path) -> list[Path]:
    return sorted(output.glob("part-*"))


def read_pairs(output: Path, raw: bool = False) -> list[tuple]:
    """Every (key, value) in the part files, in file order; JSON fields decoded unless raw (a str
    that looks like JSON, e.g. "1984", is written as it is, so only the job knows which it was)."""
    pairs = []
    for part in part_files(output):
        for line in part.read_text(encoding="utf-8").split("\n")[:-1]:
            key, value = line.split("\t", 1)
            pairs.append((key, value) if raw else (_field(key), _field(value)))
    return pairs


def _field(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_counts(output: Path) -> dict:
    pairs = read_pairs(output)
    result = dict(pairs)
    assert len(result) == len(pairs), "a key appears in more than one output record"
    return result


def write_corpus(directory: Path, files: int = 6, lines: int = 300, seed: int = 7) -> list[Path]:
    rng = random.Random(seed)
    vocab = [
        "the",
        "of",
        "and",
        "river",
        "Map",
        "bread",
        "light",
        "keeper",
        "North",
        "salt",
        "a",
        "to",
        "Ünïcode",
        "café",
        "x",
        "don't",
        "e-mail",
        "1984",
        "zebra",
        "quay",
    ]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(files):
        path = directory / f"doc{n:02d}.txt"
        body = "\n".join(
            " ".join(rng.choices(vocab, k=rng.randint(0, 12))) + rng.choice([".", ",", "!", ""])
            for _ in range(lines)
        )
        path.write_text(body + "\n", encoding="utf-8")
        paths.append(path)
    return paths


class Cluster:
    """A coordinator and workers as real processes on 127.0.0.1; `close()` kills them all."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.work_dir = tmp_path / "work"
        self.coordinator = None
        self.address = None
        self.workers: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def _spawn(
        self, name: str, args, module: str = "mapreduce.cli", env: dict | None = None
    ) -> subprocess.Popen:
        log = self.tmp / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        handle = open(log, "w")
        env = {**os.environ, **(env or {})}
        if module != "mapreduce.cli":  # a launcher under tests/ that installs a test hook
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(ROOT / "tests"), env.get("PYTHONPATH")])
            )
        try:
            return subprocess.Popen(
                [sys.executable, "-m", module, *map(str, args)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                env=env,
            )
        finally:
            handle.close()

    def start_coordinator(
        self, port: int | None = None, *extra, module: str = "mapreduce.cli", env=None
    ) -> str:
        bind = f"tcp://127.0.0.1:{port or '*'}"
        self.coordinator = self._spawn(
            "coordinator",
            ["coordinator", "--bind", bind, "--work-dir", self.work_dir, *FAST, *extra],
            module,
            env,
        )
        log = self.logs[-1]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            match = re.search(r"listening on (tcp://\S+);", log.read_text())
            if match:
                self.address = match.group(1)
                return self.address
            assert self.coordinator.poll() is None, log.read_text()
            time.sleep(0.05)
        raise AssertionError("coordinator did not start")

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def start_worker(self, processes: int = 1, *extra) -> subprocess.Popen:
        worker = self._spawn(
            "worker", ["worker", "--connect", self.address, "--processes", processes, *FAST, *extra]
        )
        self.workers.append(worker)
        return worker

    def stop_coordinator(self) -> None:
        kill_group(self.coordinator.pid)
        self.coordinator.wait()

    def status(self, *extra) -> dict:
        result = run_cli("status", "--coordinator", self.address, "--json", *extra, timeout=30)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait_for_workers(self, count: int, timeout: float = 30, *extra) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(*extra)
            if len(status["workers"]) >= count:
                return status
            time.sleep(0.1)
        raise AssertionError(f"fewer than {count} workers registered")

    def submit(self, job, inputs, output, *extra, env=None, timeout=120, cwd=None) -> Result:
        return run_cli(
            "submit",
            job,
            *inputs,
            "--coordinator",
            self.address,
            "--output",
            output,
            *extra,
            env=env,
            timeout=timeout,
            cwd=cwd,
        )

    def close(self) -> None:
        for process in [self.coordinator, *self.workers]:
            if process is not None:
                kill_group(process.pid)
                if process.poll() is None:
                    process.kill()
                process.wait()


# --- the shuffle, written and read back ----------------------------------------------------------


def write(directory, pairs, num_partitions=1, **options):
    """A MapOutputWriter's output for these pairs (a MapOutput)."""
    from mapreduce.shuffle import MapOutputWriter

    writer = MapOutputWriter(str(directory), num_partitions, **options)
    writer.add_pairs(pairs)
    return writer.close()


def groups_of(paths) -> list:
    """[(key, [values...])] as the reducer sees them."""
    from mapreduce.shuffle import iter_partition_groups

    return [(key, list(values)) for key, values in iter_partition_groups(paths)]


def all_groups(output) -> dict:
    """partition -> its groups."""
    return {partition: groups_of(paths) for partition, paths in output.files.items()}


def typed(key):
    # 1, 1.0 and True are different keys for the shuffle, so references key their dicts by type too.
    return (type(key), key)


# --- the optional C extension --------------------------------------------------------------------


def speedups_missing() -> str:
    """Why mapreduce._speedups cannot be used here ("" when it can): it is optional, built by
    setup.py only where a C compiler and the Python headers exist."""
    try:
        import mapreduce._speedups  # noqa: F401
    except ImportError as exc:
        return (
            f"mapreduce._speedups is not importable ({exc}): `pip install -e .` builds it "
            f"where a C compiler and the Python headers are installed; the shuffle writer's Python "
            f"counting loop is tested instead"
        )
    return ""


def small_splits(size: str) -> list:
    """Options for splits below the 64 KiB minimum, so a small test input makes several map
    tasks: the minimum is lowered as a user would lower it, with --min-split-size."""
    return ["--split-size", size, "--min-split-size", size]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at this moment (for a process that must bind the same
    address twice, as a restarted coordinator does)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the status page (mapreduce/web) -------------------------------------------------------------


def status_page_url(log: Path, process: subprocess.Popen | None = None, timeout: float = 20) -> str:
    """The status page's address a coordinator or run announced in its log ("status page on
    URL"), without the trailing slash."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"status page on (http://\S+?)/?$", log.read_text(), re.M)
        if match:
            return match.group(1)
        assert process is None or process.poll() is None, log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"no status page announced in {log}")


def http_get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """(status code, body) of a GET; an HTTP error status is returned, not raised."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric_samples(text: str) -> dict:
    """A /metrics page parsed by prometheus-client's parser: {(sample name, ((label, value),
    ...)): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
