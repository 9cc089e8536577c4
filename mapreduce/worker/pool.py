"""The local pool: starts N worker processes for `mapreduce run` and replaces those that die.

Each is an ordinary worker (`python -m mapreduce.worker`) connecting over ZeroMQ, exactly what a
cluster runs; the pool only supervises processes. They inherit the environment and working
directory, except the user's MAPREDUCE_<SETTING> variables (those set the parent command's
options, which pass on what workers need as options; the log file's and format's excepted: workers log
where and as their parent does), get the run's secret in SECRET_ENV, die with their parent (PR_SET_PDEATHSIG, plus a
parent-pid check), and are killed in `stop()`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from mapreduce.errors import MapReduceError
from mapreduce.logconfig import LOG_FILE_ENV, LOG_FORMAT_ENV
from mapreduce.worker.lifetime import die_with_parent

SECRET_ENV = "MAPREDUCE_SECRET"  # the per-run secret (hex) a worker authenticates frames with
EARLY_DEATH_S = 3.0  # a worker dying this soon after start is a start-up failure...
MAX_EARLY_DEATHS = 5  # ...and this many in a row means starting workers does not work here


class LocalPool:
    def __init__(
        self,
        connect: str,
        size: int,
        *,
        secret: bytes | None = None,
        heartbeat_interval: float | None = None,
        liveness: int | None = None,
    ):
        self.connect = connect
        self.size = size
        self.secret = secret
        self.options = []
        if heartbeat_interval is not None:
            self.options += ["--heartbeat-interval", str(heartbeat_interval)]
        if liveness is not None:
            self.options += ["--liveness", str(liveness)]
        self.processes: dict[int, tuple[subprocess.Popen, float]] = {}
        self.replaced = 0
        self.early_deaths = 0

    def start(self) -> None:
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("MAPREDUCE_") or name in (LOG_FILE_ENV, LOG_FORMAT_ENV)
        }
        if self.secret:
            env[SECRET_ENV] = self.secret.hex()
        command = [
            sys.executable,
            "-m",
            "mapreduce.worker",
            "--connect",
            self.connect,
            "--parent-pid",
            str(os.getpid()),
            *self.options,
        ]
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        self.processes[process.pid] = (process, time.monotonic())

    def check(self) -> list[int]:
        """Replace workers that exited; returns the process ids of those that exited."""
        exited = []
        for pid, (process, started) in list(self.processes.items()):
            if process.poll() is None:
                continue
            del self.processes[pid]
            if time.monotonic() - started < EARLY_DEATH_S:
                self.early_deaths += 1
                if self.early_deaths >= MAX_EARLY_DEATHS:
                    raise MapReduceError(
                        f"worker processes keep exiting right after they start (last exit status "
                        f"{process.returncode}); see their messages above. Is the 'mapreduce' package "
                        f"importable by {sys.executable}?"
                    )
            else:
                self.early_deaths = 0
            self._spawn()
            exited.append(pid)
        self.replaced += len(exited)
        return exited

    def pids(self) -> list[int]:
        return list(self.processes)

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM every worker, wait up to `grace` seconds, then SIGKILL what is left."""
        for process, _ in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process, _ in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
