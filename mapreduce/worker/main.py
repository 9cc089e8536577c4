"""The worker's entry: `mapreduce worker` (cli.py) and `python -m mapreduce.worker` (__main__.py,
what the local pool starts) both call `run_worker`. The CLI depends on the worker, never the reverse."""

from __future__ import annotations

import os

from mapreduce import defaults
from mapreduce.security import keys_for, require_keys_for
from mapreduce.worker.pool import SECRET_ENV
from mapreduce.worker.process import serve


def run_worker(
    connect: str | None,
    processes: int = 1,
    *,
    parent_pid: int | None = None,
    heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL_S,
    liveness: int = defaults.HEARTBEAT_LIVENESS,
    reconnect_backoff: float = defaults.RECONNECT_BACKOFF_MIN_S,
    keys_dir: str | None = None,
    insecure: bool = False,
    elect: str | None = None,
    secret: bytes | None = None,
) -> int:
    """Serve the coordinator at `connect` with `processes` task slots until SIGTERM or SIGINT;
    returns the exit status. With no `keys_dir`, this user's own key set is used (none with
    `insecure`, which warns); a non-loopback address without keys is refused (MapReduceError)
    unless `insecure`. A local pool's worker gets its run's secret instead: as `secret` when it
    was forked, in SECRET_ENV when it was started as `python -m mapreduce.worker`.
    `connect` may list several addresses (comma-separated), tried in turn; `elect`
    (etcd://HOST:PORT[/NAME]) follows the elected leader instead."""
    addresses = [address.strip() for address in (connect or "").split(",") if address.strip()]
    if secret is None and os.environ.get(SECRET_ENV):
        secret = bytes.fromhex(os.environ[SECRET_ENV])
    given_keys = keys_dir
    if secret:  # a local pool's worker: the run's secret guards it, on loopback
        for address in addresses:
            require_keys_for(address, keys_dir, insecure, "worker")
    else:  # with no keys given: this user's own key set, or none at all with --insecure
        keys_dir = keys_for(keys_dir, insecure, addresses, "worker")
    return serve(
        connect,
        processes,
        secret=secret,
        heartbeat_interval=heartbeat_interval,
        liveness=liveness,
        reconnect_backoff=reconnect_backoff,
        parent_pid=parent_pid,
        keys_dir=keys_dir,
        keys_required=not given_keys,
        insecure=insecure,
        elect=elect,
    )
