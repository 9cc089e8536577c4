"""Coordinators standing by for each other through etcd (`--elect`), workers and clients
following the leader, as real processes on 127.0.0.1: used by tests/test_election.py and
tests/benchmarks/failover.py. `close()` kills every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import FAST, ROOT, free_port, kill_group, run_cli
from mapreduce.election import Election

TTL = 2


class Elected:
    """Coordinators standing by for each other, workers and clients following the leader."""

    def __init__(self, tmp: Path, etcd_url: str, module: str = "mapreduce.cli"):
        self.tmp = tmp
        self.etcd_url = etcd_url
        self.work_dir = tmp / "work"
        self.module = module
        self.processes: list[subprocess.Popen] = []
        self.coordinators: dict[int, tuple[subprocess.Popen, Path]] = {}  # port -> (process, log)

    def _spawn(self, name: str, args, env=None) -> tuple[subprocess.Popen, Path]:
        log = self.tmp / f"{name}-{len(self.processes)}.log"
        environment = {**os.environ, **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "tests"), environment.get("PYTHONPATH")])
        )
        with open(log, "w") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", self.module, *map(str, args)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                env=environment,
            )
        self.processes.append(process)
        return process, log

    def start_coordinator(self, *extra, env=None) -> int:
        port = free_port()
        process, log = self._spawn(
            "coordinator",
            [
                "-v",
                "coordinator",
                "--bind",
                f"tcp://127.0.0.1:{port}",
                "--work-dir",
                self.work_dir,
                "--elect",
                self.etcd_url,
                "--lease-ttl",
                TTL,
                *FAST,
                *extra,
            ],
            env,
        )
        self.coordinators[port] = (process, log)
        return port

    def start_worker(self, *extra, connect: str | None = None) -> subprocess.Popen:
        where = ["--connect", connect] if connect else ["--elect", self.etcd_url]
        process, _ = self._spawn("worker", ["worker", *where, *FAST, *extra])
        return process

    def leader(self, timeout: float = 30, other_than: int | None = None) -> int:
        """The port of the coordinator leading and listening."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for port, (process, log) in self.coordinators.items():
                assert process.poll() is None or port == other_than, log.read_text()
                text = log.read_text()
                if port != other_than and re.search(r"leader of term \d+ .*listening on", text):
                    if Election(self.etcd_url).observe() == f"tcp://127.0.0.1:{port}":
                        return port
            time.sleep(0.05)
        raise AssertionError(
            "no leader: " + " / ".join(log.read_text() for _, log in self.coordinators.values())
        )

    def status(self, *extra) -> dict:
        result = run_cli("status", "--elect", self.etcd_url, "--json", *extra, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait_for_workers(self, count: int, *extra, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.status(*extra)["workers"]) < count:
            assert time.monotonic() < deadline, "workers did not register"
            time.sleep(0.1)

    def close(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            kill_group(process.pid)
            if process.poll() is None:
                process.kill()
            process.wait()


def parts(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def commits(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [
        (int(pid), out)
        for pid, out in (line.split(" ", 1) for line in log.read_text().splitlines())
    ]
