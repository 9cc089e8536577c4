"""Leader election for standby coordinators, and finding the leader from workers and clients.

`--elect etcd://HOST:PORT[/NAME]`: coordinators started with the same NAME campaign for one key,
`/mapreduce/election/NAME`. The winner creates it (a transaction: only if it does not exist)
attached to a lease it keeps alive, with its address as the value; the etcd revision of that
transaction is its *term*, larger for every later winner. The others poll the key and stand by
(not bound) until it is gone: its holder resigned, or stopped keeping its lease alive.

Fencing: `Leadership.valid()` is the local test, cheap enough to run before every journal write:
False once a keep-alive failed or once the lease might have expired (TTL minus a margin since the
last keep-alive that etcd answered was sent); it never turns True again. `Leadership.confirm()`
asks etcd as well (the key still exists with our term and lease): run before each commit step.

The interface (`campaign`, `observe`, `Leadership.valid/confirm/resign`) is what a ZooKeeper
backend would implement; only etcd exists, through `etcd3gw` (the `mapreduce[ha]` extra), a small
client of etcd's HTTP/JSON gateway.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from . import defaults
from .errors import MapReduceError

log = logging.getLogger("mapreduce.election")

SCHEME = "etcd"
DEFAULT_NAME = "mapreduce"
KEY_PREFIX = "/mapreduce/election/"


class ElectionError(MapReduceError):
    """The election service cannot be used: not installed, a bad URL, or it does not answer."""


class LeadershipLost(MapReduceError):
    """This coordinator is no longer the leader: it must stop writing and committing at once."""


@dataclass(frozen=True)
class ElectionURL:
    host: str
    port: int
    name: str

    @property
    def key(self) -> str:
        return KEY_PREFIX + self.name

    def __str__(self) -> str:
        return f"{SCHEME}://{self.host}:{self.port}/{self.name}"


def parse(url: str) -> ElectionURL:
    parts = urlsplit(url)
    name = parts.path.strip("/") or DEFAULT_NAME
    try:
        port = parts.port or 2379
    except ValueError:
        port = -1
    if parts.scheme != SCHEME or not parts.hostname or port <= 0 or "/" in name:
        raise ElectionError(
            f"--elect '{url}' is not an election address: use etcd://HOST:PORT or "
            f"etcd://HOST:PORT/NAME (NAME, default '{DEFAULT_NAME}', tells clusters sharing "
            f"one etcd apart)."
        )
    return ElectionURL(parts.hostname, port, name)


def _client(url: ElectionURL, timeout: float):
    try:
        from etcd3gw.client import Etcd3Client
    except ImportError:
        raise ElectionError(
            "--elect needs the etcd client library etcd3gw, which is not installed: "
            "`pip install 'mapreduce[ha]'` (or `pip install etcd3gw`) on every machine that "
            "runs a coordinator, a worker or a client with --elect."
        ) from None
    return Etcd3Client(host=url.host, port=url.port, timeout=timeout)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _unreachable(url: ElectionURL, exc: Exception) -> ElectionError:
    return ElectionError(
        f"the election service at {url.host}:{url.port} does not answer ({type(exc).__name__}: "
        f"{exc}). Is etcd running there, and is its client port reachable from this machine?"
    )


class Election:
    """One election (etcd server and NAME)."""

    def __init__(self, url: str, ttl: float = defaults.ELECTION_TTL_S):
        self.url = parse(url)
        self.ttl = max(2, int(round(ttl)))
        self.client = _client(self.url, timeout=max(1.0, self.ttl / 3))

    def observe(self) -> str | None:
        """The leader's address, or None while there is none."""
        try:
            found = self.client.get(self.url.key)
        except Exception as exc:
            raise _unreachable(self.url, exc) from None
        return found[0].decode() if found else None

    def campaign(
        self, address: str, stop: Callable[[], bool] = lambda: False, poll: float = 0.25
    ) -> Leadership | None:
        """Stand by until this process wins, then lead with `address` published: the Leadership
        (with its keep-alive thread running), or None if `stop()` turned true first. A service
        that does not answer is waited for (logged), not given up on."""
        lease = None
        warned = False
        while not stop():
            try:
                # The lease runs from before the request: the deadline errs on the safe side.
                granted = time.monotonic()
                if lease is None:
                    lease = self.client.lease(self.ttl)
                elif lease.refresh() <= 0:
                    lease = None
                    continue
                term = self._create(address, lease.id)
                if term is not None:
                    return Leadership(self, lease, term, address, granted)
                warned = False
            except Exception as exc:
                if not warned:
                    log.warning("election: %s; trying again", _unreachable(self.url, exc))
                    warned = True
                lease = None
            time.sleep(poll)
        if lease is not None:
            try:
                lease.revoke()
            except Exception:
                pass
        return None

    def _create(self, address: str, lease_id: int) -> int | None:
        """Create the key if nobody holds it: our term (the transaction's revision), or None."""
        key = _b64(self.url.key)
        result = self.client.transaction(
            {
                "compare": [
                    {"key": key, "result": "EQUAL", "target": "CREATE", "create_revision": 0}
                ],
                "success": [
                    {"request_put": {"key": key, "value": _b64(address), "lease": lease_id}}
                ],
                "failure": [],
            }
        )
        if not result.get("succeeded"):
            return None
        return int(result["header"]["revision"])

    def holder(self) -> tuple[int, int] | None:
        """(term, lease id) of the key as etcd has it now, or None."""
        found: Any = self.client.get(self.url.key, metadata=True)
        if not found:
            return None
        meta = found[0][1]
        return int(meta.get("create_revision", 0)), int(meta.get("lease", 0))


class Leadership:
    """This process leads, for `term`, while the lease is kept alive."""

    def __init__(self, election: Election, lease, term: int, address: str, granted: float):
        self.election = election
        self.lease = lease
        self.term = term
        self.address = address
        self.margin = min(1.0, election.ttl / 4)
        self._deadline = granted + election.ttl - self.margin
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._keep_alive, name="lease", daemon=True)
        self._thread.start()

    def valid(self) -> bool:
        """Still the leader, by the local clock: no keep-alive failed, and the lease cannot have
        expired yet. Once False, False for good."""
        if self._lost.is_set():
            return False
        if time.monotonic() >= self._deadline:
            self._lose("the lease may have expired (no keep-alive answered in time)")
            return False
        return True

    def confirm(self) -> bool:
        """valid(), and etcd agrees: the election key still carries our term and lease."""
        if not self.valid():
            return False
        try:
            holder = self.election.holder()
        except Exception as exc:
            # etcd is out of reach: the local deadline alone still says whether the lease can
            # have expired (safe while clocks run at about the same rate).
            log.warning("election: could not ask etcd to confirm the leadership: %s", exc)
            return self.valid()
        if holder != (self.term, self.lease.id):
            self._lose("the election key is no longer ours")
            return False
        return self.valid()

    def check(self) -> None:
        """Raise LeadershipLost unless valid()."""
        if not self.valid():
            raise LeadershipLost(
                f"this coordinator lost the leadership of term {self.term} "
                f"({self.why or 'lease lost'}); it stops writing and committing."
            )

    why: str | None = None

    def _lose(self, why: str) -> None:
        if not self._lost.is_set():
            self.why = why
            self._lost.set()
            log.warning("election: lost the leadership of term %s: %s", self.term, why)

    def _keep_alive(self) -> None:
        interval = self.election.ttl / 3
        while not self._lost.wait(interval):
            sent = time.monotonic()
            try:
                ttl = self.lease.refresh()
            except Exception as exc:
                log.warning("election: keep-alive failed: %s", exc)
                ttl = None
            if not self.valid():
                return
            if ttl is None:
                continue  # try again; valid() turns False once the deadline passes
            if ttl <= 0:
                self._lose("etcd says the lease has expired")
                return
            self._deadline = sent + self.election.ttl - self.margin

    def resign(self) -> None:
        """Step down: stop keeping the lease alive and revoke it (the key goes with it)."""
        self._lose("resigned")
        try:
            self.lease.revoke()
        except Exception as exc:
            log.warning("election: could not revoke the lease (it expires by itself): %s", exc)


# ---- finding the leader (workers, clients) ------------------------------------------------------


class Addresses:
    """Where a worker or client looks for the coordinator: one address, a comma-separated list
    (tried in turn until one answers), or an election (whoever leads)."""

    def __init__(self, addresses: str | None = None, elect: str | None = None):
        if not addresses and not elect:
            raise MapReduceError(
                "give the coordinator's address (--connect/--coordinator) or --elect."
            )
        self.election = Election(elect) if elect else None
        self.static = [a.strip() for a in (addresses or "").split(",") if a.strip()]
        self._index = 0
        self._current: str | None = None

    def describe(self) -> str:
        if self.election is not None:
            return f"the leader elected at {self.election.url}"
        return ", ".join(self.static)

    def all_static(self) -> list[str]:
        return list(self.static)

    def current(self, wait: float = 0.0) -> str | None:
        """The address to try now (None: no leader yet after waiting up to `wait` seconds)."""
        if self.election is None:
            return self.static[self._index % len(self.static)]
        deadline = time.monotonic() + wait
        while True:
            try:
                self._current = self.election.observe()
            except ElectionError as exc:
                log.warning("%s", exc)
                self._current = None
            if self._current is not None or time.monotonic() >= deadline:
                return self._current
            time.sleep(0.2)

    def failed(self) -> bool:
        """The current address did not answer: move on. True when a whole round went unanswered
        (the caller should back off before trying again), False when another candidate is
        waiting to be tried at once."""
        if self.election is None:
            self._index += 1
            return self._index % len(self.static) == 0
        before = self._current
        return self.current() in (None, before)

    def wait(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Sleep up to `seconds` before the next round; with an election, only until a leader
        other than the one that did not answer is published."""
        deadline = time.monotonic() + seconds
        silent = self._current
        while time.monotonic() < deadline and not stop():
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            if self.election is not None and self.current() not in (None, silent):
                return
