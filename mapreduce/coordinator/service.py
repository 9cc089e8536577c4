"""`mapreduce coordinator`: the long-lived service around a `Coordinator`, and its work directory."""

from __future__ import annotations

import os
import re
import signal
import sys

import zmq

from .. import security, storage
from ..errors import MapReduceError
from ..scheduler import SchedulerSettings
from .jobs import make_work_dir
from .journal import open_journal
from .loop import Coordinator


def check_work_dir(work_dir: str) -> str:
    """The work directory made absolute (local) and usable, or a one-paragraph error: checked when
    the coordinator starts, not when the first job needs it."""
    work_dir = storage.absolute(work_dir)
    try:
        if not storage.bucket_exists(work_dir):
            raise MapReduceError(
                f"work directory '{work_dir}': there is no bucket "
                f"'{storage.bucket_of(work_dir)}' at that endpoint; create it or "
                f"check the spelling, AWS_ENDPOINT_URL and the credentials."
            )
        make_work_dir(work_dir)
    except MapReduceError:
        raise
    except OSError as exc:
        raise storage.describe_error(work_dir, "create the work directory", exc) from None
    return work_dir


def default_work_dir(bind: str) -> str:
    """Where `mapreduce coordinator --bind ADDR` keeps its journal and shuffle files unless told
    otherwise: the same place for the same address, so that running the same command again
    resumes its jobs (`$XDG_STATE_HOME/mapreduce/`, by default `~/.local/state/mapreduce/`)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    name = re.sub(r"[^A-Za-z0-9.]+", "-", bind).strip("-")
    return os.path.join(state, "mapreduce", f"coordinator-{name}")


def serve(
    bind: str,
    work_dir: str | None = None,
    settings: SchedulerSettings | None = None,
    keys_dir: str | None = None,
    insecure: bool = False,
) -> int:
    """`mapreduce coordinator`: serve jobs until SIGINT or SIGTERM. Every accepted change is in
    the journal under the work directory: jobs still running when it stops (or crashes)
    continue when it is started again with the same work directory."""
    security.require_keys_for(bind, keys_dir, insecure, "coordinator")
    stopping = []
    handler = lambda signum, frame: stopping.append(signum)  # noqa: E731
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    if not work_dir and (bind.endswith(":*") or bind.endswith(":0")):
        raise MapReduceError(
            f"--bind '{bind}' has a wildcard port, so restarting the coordinator would not "
            f"find its jobs again: give it a --work-dir of its own (its journal lives there)."
        )
    work_dir = check_work_dir(work_dir or default_work_dir(bind))
    journal = open_journal(work_dir)
    try:
        coordinator = Coordinator(
            bind, work_dir=work_dir, settings=settings, keys_dir=keys_dir, journal=journal
        )
    except zmq.ZMQError as exc:
        journal.close()
        raise MapReduceError(
            f"cannot listen on '{bind}': {exc}. Use an address like "
            f"tcp://127.0.0.1:5555 whose port is free."
        ) from None
    except BaseException:
        journal.close()
        raise
    guarded = "CURVE keys from " + keys_dir if keys_dir else "no keys"
    print(
        f"mapreduce coordinator: listening on {coordinator.address}; {guarded}; work "
        f"directory {work_dir} (it must be reachable at this path from every worker; the "
        f"journal there lets a restart resume the jobs)",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stopping:
            coordinator.poll(0.5)
    finally:
        running = coordinator.close(cancel_running=False)
    resume = f"; {running} running job(s) continue when it starts again" if running else ""
    print(f"mapreduce coordinator: stopped{resume}", file=sys.stderr, flush=True)
    return 0
