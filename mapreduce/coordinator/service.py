"""`mapreduce coordinator`: the long-lived service around a `Coordinator`, and its work directory."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys

import zmq

from .. import defaults, security, storage
from ..election import Election, LeadershipLost
from ..errors import MapReduceError
from ..scheduler import SchedulerSettings
from .jobs import make_work_dir
from .journal import open_journal
from .loop import Coordinator

log = logging.getLogger("mapreduce.coordinator")


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
    elect: str | None = None,
    advertise: str | None = None,
    lease_ttl: float = defaults.ELECTION_TTL_S,
    finished_jobs_kept: int = defaults.FINISHED_JOBS_KEPT,
    status_page=None,
    allowed_paths: tuple = (),
) -> int:
    """`mapreduce coordinator`: serve jobs until SIGINT or SIGTERM. Every accepted change is in
    the journal under the work directory: jobs still running when it stops (or crashes)
    continue when it is started again with the same work directory.

    With `elect` (etcd://HOST:PORT[/NAME]): stand by, not bound, until this coordinator wins the
    election; then replay the journal and serve under the term it won. If it loses the
    leadership (its lease expired: it was paused, or cut off from etcd), it stops at once,
    writing and committing nothing more, and stands by again.

    `status_page` (a web.StatusServer) shows whichever coordinator this process runs. With
    `allowed_paths` (--allow-path), jobs may read and write only under those prefixes."""
    # With no keys given: this user's own key set, or none at all with --insecure.
    keys_dir = security.keys_for(keys_dir, insecure, [bind], "coordinator")
    stopping: list = []
    handler = lambda signum, frame: stopping.append(signum)  # noqa: E731
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    if not work_dir and (bind.endswith(":*") or bind.endswith(":0")):
        raise MapReduceError(
            f"--bind '{bind}' has a wildcard port, so restarting the coordinator would not "
            f"find its jobs again: give it a --work-dir of its own (its journal lives there)."
        )
    if elect and not work_dir:
        raise MapReduceError(
            "--elect needs --work-dir: the coordinators standing by for each other must share "
            "one work directory (a shared filesystem or an S3 URI), where the journal lives."
        )
    work_dir = check_work_dir(work_dir or default_work_dir(bind))
    allowed_paths = tuple(storage.absolute(prefix) for prefix in allowed_paths)
    if not elect:
        coordinator = start(
            bind,
            work_dir,
            settings,
            keys_dir,
            open_journal(work_dir),
            kept=finished_jobs_kept,
            allowed_paths=allowed_paths,
        )
        coordinator.monitor = status_page and status_page.publisher
        announce(coordinator, keys_dir, work_dir)
        return run(coordinator, stopping)
    election = Election(elect, lease_ttl)
    if advertise is None and (bind.endswith(":*") or bind.endswith(":0")):
        raise MapReduceError(
            f"--elect with a wildcard port in --bind '{bind}': workers and clients find the "
            f"leader by the address it publishes, so give it a fixed port."
        )
    published = advertise or published_address(bind)
    while not stopping:
        print(
            f"mapreduce coordinator: standing by for {election.url} (not listening until "
            f"elected; {published} is published when it leads)",
            file=sys.stderr,
            flush=True,
        )
        leadership = election.campaign(published, stop=lambda: bool(stopping))
        if leadership is None:
            break
        try:
            journal = open_journal(work_dir, leadership.term, leadership.check)
            coordinator = start(
                bind,
                work_dir,
                settings,
                keys_dir,
                journal,
                leadership,
                kept=finished_jobs_kept,
                allowed_paths=allowed_paths,
            )
            coordinator.monitor = status_page and status_page.publisher
        except LeadershipLost as exc:
            log.warning("%s", exc)
            continue
        except BaseException:
            leadership.resign()
            raise
        announce(
            coordinator, keys_dir, work_dir, f"leader of term {leadership.term} at {election.url}"
        )
        try:
            return run(coordinator, stopping, leadership)
        except LeadershipLost as exc:
            coordinator.abandon()
            print(
                f"mapreduce coordinator: {str(exc).rstrip('.')}; standing by again",
                file=sys.stderr,
                flush=True,
            )
    return 0


def published_address(bind: str) -> str:
    """What workers and clients connect to: the bind address, with a wildcard host replaced by
    this machine's name."""
    for wildcard in ("tcp://*:", "tcp://0.0.0.0:"):
        if bind.startswith(wildcard):
            return f"tcp://{socket.getfqdn()}:{bind[len(wildcard) :]}"
    return bind


def start(
    bind,
    work_dir,
    settings,
    keys_dir,
    journal,
    leadership=None,
    kept=defaults.FINISHED_JOBS_KEPT,
    allowed_paths=(),
) -> Coordinator:
    try:
        return Coordinator(
            bind,
            work_dir=work_dir,
            settings=settings,
            keys_dir=keys_dir,
            journal=journal,
            leadership=leadership,
            finished_jobs_kept=kept,
            allowed_paths=allowed_paths,
        )
    except zmq.ZMQError as exc:
        journal.abandon() if leadership is not None else journal.close()
        raise MapReduceError(
            f"cannot listen on '{bind}': {exc}. Use an address like "
            f"tcp://127.0.0.1:5555 whose port is free."
        ) from None
    except BaseException:
        journal.abandon() if leadership is not None else journal.close()
        raise


def announce(coordinator: Coordinator, keys_dir, work_dir: str, role: str = "") -> None:
    guarded = (
        f"CURVE keys from {keys_dir}"
        if keys_dir
        else "NO KEYS (--insecure: anyone who can connect can run code on the workers)"
    )
    if coordinator.allowed_paths:
        guarded += f"; jobs may use paths under {', '.join(coordinator.allowed_paths)} only"
    print(
        f"mapreduce coordinator: {role + '; ' if role else ''}listening on "
        f"{coordinator.address}; {guarded}; work "
        f"directory {work_dir} (it must be reachable at this path from every worker; the "
        f"journal there lets a restart resume the jobs)",
        file=sys.stderr,
        flush=True,
    )


def run(coordinator: Coordinator, stopping: list, leadership=None) -> int:
    """Poll until a signal; LeadershipLost propagates (the caller abandons the coordinator)."""
    try:
        while not stopping:
            coordinator.poll(0.5)
    except LeadershipLost:
        raise
    except BaseException:
        coordinator.close(cancel_running=False)
        raise
    running = coordinator.close(cancel_running=False)
    if leadership is not None:
        leadership.resign()  # a standby takes over at once, not after the lease's TTL
    resume = f"; {running} running job(s) continue when it starts again" if running else ""
    print(f"mapreduce coordinator: stopped{resume}", file=sys.stderr, flush=True)
    return 0
