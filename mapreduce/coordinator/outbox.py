"""Everything the coordinator sends, and to whom: the ROUTER socket's sending side.

Which routing id each registered worker is at (and back), its session, the highest TASK number
sent to it (every other message to a worker carries it, protocol.py), when it was last sent
anything (heartbeats are due after an interval of silence), and the peers a send failed to. A
send never blocks the loop: a peer that cannot take a message now is logged once and skipped.
"""

from __future__ import annotations

import logging
import time

import zmq

from .. import protocol
from ..protocol import Message

log = logging.getLogger("mapreduce.coordinator")


class Outbox:
    def __init__(self, socket: zmq.Socket, secret: bytes | None):
        self.socket = socket
        self.secret = secret
        self.routes: dict[str, bytes] = {}  # worker id -> routing id
        self.peers: dict[bytes, str] = {}  # routing id -> worker id
        self.last_sent: dict[str, float] = {}
        self.unreachable: set = set()  # routing ids a send failed to (logged once)
        self.tasks_sent: dict[str, int] = {}  # worker id -> the highest TASK number sent to it
        self.sessions: dict[str, object] = {}  # worker id -> the session its READY named

    def send(self, route: bytes, command: bytes, header: dict, blobs: tuple = ()) -> bool:
        try:
            protocol.send(
                self.socket,
                Message(command, header, list(blobs)),
                self.secret,
                route=route,
                flags=zmq.NOBLOCK,
            )
            self.unreachable.discard(route)
            return True
        except (zmq.Again, zmq.ZMQError) as exc:
            # The peer vanished or its queue is full: never block the loop on one peer. Said once
            # per peer: heartbeats to a dead one fail until it is declared dead.
            (log.debug if route in self.unreachable else log.warning)(
                "could not send to peer %s: %s", peer_name(route), exc
            )
            self.unreachable.add(route)
            return False

    def send_to_worker(self, worker: str, command: bytes, header: dict, blobs: tuple = ()) -> bool:
        route = self.routes.get(worker)
        if route is None:
            return False
        if command != protocol.TASK:
            # The highest TASK number sent to it so far: once the worker has heard of it, a TASK
            # it does not run was lost, not still on its way (Scheduler.worker_report).
            header = {**header, "assigned": self.tasks_sent.get(worker, 0)}
        sent = self.send(route, command, header, blobs)
        if sent or command == protocol.HEARTBEAT:
            self.last_sent[worker] = time.monotonic()  # a failed heartbeat waits its turn too
        return sent

    def task_numbered(self, worker: str, seq: int) -> None:
        """A TASK numbered `seq` is going to the worker."""
        self.tasks_sent[worker] = max(self.tasks_sent.get(worker, 0), seq)

    def register(self, worker: str, route: bytes, session, now: float) -> None:
        """The worker (re)registered from that routing id, in that session."""
        old_route = self.routes.get(worker)
        if old_route is not None and old_route != route:
            self.peers.pop(old_route, None)
        self.routes[worker], self.peers[route] = route, worker
        self.sessions[worker] = session
        self.last_sent[worker] = now

    def forget(self, worker: str) -> None:
        """The worker is gone: its route, session and counts with it."""
        route = self.routes.pop(worker, None)
        if route is not None:
            self.peers.pop(route, None)
            self.unreachable.discard(route)
        self.last_sent.pop(worker, None)
        self.tasks_sent.pop(worker, None)  # stamps start again from 0: lower is always safe
        self.sessions.pop(worker, None)


def peer_name(route: bytes) -> str:
    """A routing id for the log: workers' and clients' are readable (w:..., c:...)."""
    text = route.decode("utf-8", "replace")
    return text if text.isprintable() and text[:2] in ("w:", "c:") else route.hex()
