"""The local pool: starts N worker processes for `mapreduce run` and replaces those that die.

Each is an ordinary worker (the `run_worker` that `python -m mapreduce.worker` runs) connecting over
ZeroMQ, exactly what a cluster runs; the pool only supervises processes. They inherit the
environment and working directory, except the user's MAPREDUCE_<SETTING> variables (those set the
parent command's options, which pass on what workers need as options; the log file's and format's
excepted: workers log where and as their parent does), get the run's secret, die with their parent
(PR_SET_PDEATHSIG, plus a parent-pid check), and are killed in `stop()`.

The first workers are forked from this process when it can be done safely (Linux, one thread, as
`mapreduce run` is when it starts): the worker's modules (pyarrow and the rest) are imported once,
here, and every worker starts with them loaded instead of paying a Python start-up and the imports
again (about 0.3 s of CPU each, on every job; PySpark's worker daemon forks its workers for the
same reason). Anywhere else (other threads could hold locks a fork would copy), and for the
replacements of workers that die, a worker is started as `python -m mapreduce.worker`.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time

from mapreduce.errors import MapReduceError
from mapreduce.logconfig import LOG_FILE_ENV, LOG_FORMAT_ENV
from mapreduce.worker.lifetime import die_with_parent

SECRET_ENV = "MAPREDUCE_SECRET"  # the per-run secret (hex) a worker authenticates frames with
EARLY_DEATH_S = 3.0  # a worker dying this soon after start is a start-up failure...
MAX_EARLY_DEATHS = 5  # ...and this many in a row means starting workers does not work here
FORK_SAFE_THREAD = "jemalloc_bg_thd"  # see can_fork()


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
        self.settings: dict = {}  # run_worker's keyword arguments, as the options below
        self.options = []
        if heartbeat_interval is not None:
            self.settings["heartbeat_interval"] = heartbeat_interval
            self.options += ["--heartbeat-interval", str(heartbeat_interval)]
        if liveness is not None:
            self.settings["liveness"] = liveness
            self.options += ["--liveness", str(liveness)]
        self.processes: dict[int, tuple[subprocess.Popen | ForkedWorker, float]] = {}
        self.replaced = 0
        self.early_deaths = 0

    def start(self) -> None:
        """Start the workers: forked from this process if it is safe now, else spawned."""
        fork = can_fork()
        if fork:
            from mapreduce.worker.main import run_worker  # the worker's modules, loaded once here

            fork = can_fork()  # importing them started no thread
        for _ in range(self.size):
            if fork:
                self._fork(run_worker)
            else:
                self._spawn()

    def _fork(self, run_worker) -> None:
        flush_standard_streams()  # what is buffered is printed once, by this process
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: it never returns into the caller's code
            status = 1
            try:
                status = _forked_worker_main(
                    run_worker, self.connect, parent, self.secret, self.settings
                )
            finally:
                os._exit(status)
        self.processes[pid] = (ForkedWorker(pid), time.monotonic())

    def _spawn(self) -> None:
        env = worker_environment()
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
            # poll() first: a process already reaped has no pid of its own any more.
            if process.poll() is None and not wait_for_exit(
                process.pid, deadline - time.monotonic()
            ):
                process.kill()
            process.wait()
        self.processes.clear()


class ForkedWorker:
    """A worker forked from this process: the part of subprocess.Popen's interface the pool uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def can_fork() -> bool:
    """Whether forking this process is safe: on Linux, when no other thread could hold a lock the
    fork copies. Threads are counted by the kernel, so a library's native threads count too; the
    one allowed is jemalloc's background thread, which importing pyarrow starts: jemalloc's own
    fork handlers make it safe (the worker forks its executors with it running)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        me = str(threading.get_native_id())
        for thread in os.listdir("/proc/self/task"):
            if thread != me:
                with open(f"/proc/self/task/{thread}/comm") as comm:
                    if comm.read().strip() != FORK_SAFE_THREAD:
                        return False
    except OSError:
        return False
    return True


def flush_standard_streams() -> None:
    """Write out what sys.stdout and sys.stderr hold (before a fork, and before os._exit)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, or replaced by None
            pass


def worker_environment() -> dict:
    """The environment a worker gets: this one, without the user's MAPREDUCE_<SETTING>
    variables (except the log file's and format's)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("MAPREDUCE_") or name in (LOG_FILE_ENV, LOG_FORMAT_ENV)
    }


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a child to exit, waking the moment it does (a pidfd:
    Popen.wait(timeout) polls with sleeps of up to 50 ms); True when it has exited."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or already reaped
        return _poll_for_exit(pid, timeout)
    try:
        readable, _, _ = select.select([fd], [], [], max(0.0, timeout))
        return bool(readable)
    finally:
        os.close(fd)


def _poll_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _forked_worker_main(run_worker, connect: str, parent: int, secret, settings: dict) -> int:
    """A forked worker, made like a spawned `python -m mapreduce.worker`: it dies with its
    parent, reads nothing from the terminal, sees the environment a spawned worker would (and
    the current directory first on sys.path, as -m puts it), and logs warnings where its parent
    logs; then it serves until stopped. Returns the exit status."""
    die_with_parent()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    kept = worker_environment()
    for name in [name for name in os.environ if name not in kept]:
        del os.environ[name]
    if sys.path:
        sys.path[0] = os.getcwd()
    logging.getLogger().setLevel(logging.WARNING)
    try:
        return run_worker(connect, parent_pid=parent, secret=secret, **settings)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:  # a Ctrl-C before the worker took SIGINT over: its run is stopping
        return 130
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    finally:
        logging.shutdown()
        flush_standard_streams()
