"""The executor: a child process per task slot that runs user code, one attempt at a time.

The worker process (process.py) forks one per slot and talks to it over a pipe: (header, job code)
in, ("done", report) or ("fail", report) out. User code runs only here, so the worker's socket loop
keeps heartbeating while a mapper sleeps, spins or holds the GIL. An executor that dies (os._exit,
a segfault, out of memory) or is killed to cancel its attempt is replaced by a fresh one.

Importing this module loads the task code (pyarrow and the rest), so the worker process holds it
before it forks its executors, and each executor starts with it loaded.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
import socket as pysocket

import pyarrow as pa

from mapreduce import defaults
from mapreduce.jobspec import loads_job
from mapreduce.worker.attempt import run_task
from mapreduce.worker.failures import TaskError, describe_exception
from mapreduce.worker.lifetime import die_with_parent
from mapreduce.worker.logs import captured_output, log_tail

_fork = multiprocessing.get_context("fork")


def executor_main(conn) -> None:
    die_with_parent()
    # Its own process group: stopping the slot kills what the attempt started too (a streaming
    # command that ignores the end of its input would otherwise outlive a cancelled attempt).
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # A map task allocates millions of small objects that mostly live until the next spill; the
    # default collector would rescan them over and over (measured: ~10% of a word count's map).
    gc.freeze()
    gc.set_threshold(*defaults.EXECUTOR_GC_THRESHOLDS)
    jobs: dict = {}
    while True:
        try:
            header, blob = conn.recv()
        except (EOFError, OSError):
            return
        job = jobs.get(header["job"])
        if job is None:
            try:
                job = loads_job(blob)
            except Exception as exc:
                conn.send(("fail", _job_load_failure(exc)))
                continue
            jobs.clear()  # one job at a time per executor: keep memory bounded
            jobs[header["job"]] = job
        log = header.get("log")
        try:
            with captured_output(log):
                report = run_task(job, header)
            conn.send(("done", report))
        except TaskError as exc:
            conn.send(("fail", {**exc.report, "log_tail": log_tail(log)}))
        except Exception as exc:
            conn.send(("fail", {**describe_exception(exc), "log_tail": log_tail(log)}))
        release_freed_memory()


def _libc_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; other C libraries have none
    except (OSError, AttributeError):
        return None


_malloc_trim = _libc_malloc_trim()


def release_freed_memory() -> None:
    """Give back to the system what the last attempt freed: glibc's heap (malloc_trim) and Arrow's
    memory pool keep freed memory, fragmented, for reuse, so every attempt an executor ran
    raised the memory the next one started from, and the largest process of a job grew with its
    number of tasks, not with any one task's size (measured on the giant-key job, 2 workers:
    153 MB at 64 MB of input, 178 MB at 256 MB, the peak in a reduce run after two map tasks;
    a map task's 64 MB split peaked at 136 MB in a fresh process and at 144 MB after another).
    A few milliseconds per attempt."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _malloc_trim is not None:
        _malloc_trim(0)


def _job_load_failure(exc: BaseException) -> dict:
    if isinstance(exc, ModuleNotFoundError):
        message = (
            f"the job needs the module '{exc.name}', which is not installed on worker "
            f"{pysocket.gethostname()}: install it there (pip install ...)"
        )
    else:
        message = f"the job's code could not be loaded on this worker: {type(exc).__name__}: {exc}"
    return {"type": type(exc).__name__, "message": message, "traceback": ""}


class ExecutorSlot:
    """One child process and the attempt it is running, if any."""

    def __init__(self):
        self.process = None
        self.conn = None
        self.current = None  # (job, task, attempt) while busy
        self.start()

    def start(self) -> None:
        parent_end, child_end = _fork.Pipe()
        self.process = _fork.Process(target=executor_main, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()
        self.conn, self.current = parent_end, None

    def run(self, header: dict, blob: bytes) -> None:
        self.current = (header["job"], header["task"], header["attempt"])
        self.conn.send((header, blob))

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        kill_process_group(self.process.pid)
        self.conn.close()

    def fileno(self) -> int:
        return self.conn.fileno()

    def exit_status(self) -> dict:
        """How the process ended, for a lost attempt's report: {"signal": "SIGKILL"} or
        {"status": 3} ({"status": None} when it could not be told)."""
        self.process.join(1)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return {"signal": signal.Signals(-code).name}
            except ValueError:
                return {"signal": f"signal {-code}"}
        return {"status": code}


def kill_process_group(leader: int) -> None:
    """SIGKILL what is left of an executor's process group (the commands its attempt started)."""
    try:
        os.killpg(leader, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left


def describe_exit(exit: dict) -> str:
    """ "exited with status 3", "killed by signal SIGKILL": an exit_status() in words."""
    if exit.get("signal"):
        return f"killed by signal {exit['signal']}"
    return f"exited with status {exit.get('status')}"
