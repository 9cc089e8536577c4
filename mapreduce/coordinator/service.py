"""`mapreduce coordinator`: the long-lived service around a `Coordinator`, and its work directory."""

from __future__ import annotations

import signal
import sys

import zmq

from .. import leftovers, security, storage
from ..errors import MapReduceError
from ..scheduler import SchedulerSettings
from .jobs import make_work_dir
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


def serve(
    bind: str,
    work_dir: str | None = None,
    settings: SchedulerSettings | None = None,
    keys_dir: str | None = None,
    insecure: bool = False,
) -> int:
    """`mapreduce coordinator`: serve jobs until SIGINT or SIGTERM; running jobs are cancelled."""
    security.require_keys_for(bind, keys_dir, insecure, "coordinator")
    stopping = []
    handler = lambda signum, frame: stopping.append(signum)  # noqa: E731
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    temporary = not work_dir
    work_dir = check_work_dir(work_dir) if work_dir else leftovers.owned_temp_dir("mapreduce-work-")
    try:
        try:
            coordinator = Coordinator(bind, work_dir=work_dir, settings=settings, keys_dir=keys_dir)
        except zmq.ZMQError as exc:
            raise MapReduceError(
                f"cannot listen on '{bind}': {exc}. Use an address like "
                f"tcp://127.0.0.1:5555 whose port is free."
            ) from None
        guarded = "CURVE keys from " + keys_dir if keys_dir else "no keys"
        print(
            f"mapreduce coordinator: listening on {coordinator.address}; {guarded}; work "
            f"directory {work_dir} (it must be reachable at this path from every worker)",
            file=sys.stderr,
            flush=True,
        )
        try:
            while not stopping:
                coordinator.poll(0.5)
        finally:
            coordinator.close()
    finally:
        if temporary:
            storage.delete_tree_quietly(work_dir)
    print("mapreduce coordinator: stopped", file=sys.stderr, flush=True)
    return 0
