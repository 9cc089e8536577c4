"""The worker process: registers with a coordinator, heartbeats, and hands out task attempts.

Shape (the zguide's Paranoid Pirate worker): the parent process owns the ZeroMQ DEALER socket and
never runs user code, so heartbeats keep flowing while a mapper sleeps, spins, or holds the GIL in C
code. Each task slot is a child *executor* process (executor.py) that runs one attempt at a time.
An executor that dies (the user's code called os._exit, segfaulted, ran out of memory) is reported
as a lost attempt and replaced; a cancelled attempt is stopped by killing its executor.

When the coordinator falls silent for the liveness window, the worker abandons its attempts, closes
its socket, opens a fresh one and registers again, backing off 1 s (`reconnect_backoff`), 2 s, ...
up to 32 s; ZeroMQ's own reconnect is not enough after a coordinator restart, which forgets every
peer. Its READY names the highest TASK number the last session heard of: the coordinator counts
those attempts lost (once), not a TASK that crossed the READY and runs in the new session.

Delivery (protocol.py says what each side guarantees): the DEALER's routing id is the worker's own,
the same on every socket, so a cut connection comes back as this worker. Every DONE and FAIL is kept
in `unacked` until the coordinator ACKs it, and sent again when the connection is re-established,
at the start of a new session (before READY, so the coordinator that still knows this worker takes
it), and after a heartbeat interval without an ACK (then two, four, ... up to the liveness window:
a coordinator that is merely slow is not flooded with copies). Every heartbeat reports the attempts running
here, the results not yet acknowledged and the highest TASK number heard of, from which the
coordinator finds TASKs lost on the way.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket as pysocket
import sys
import time
from dataclasses import dataclass

import zmq

from mapreduce import defaults, protocol, security
from mapreduce.election import Addresses
from mapreduce.protocol import Message
from mapreduce.security import require_keys_for
from mapreduce.worker.executor import ExecutorSlot, describe_exit

log = logging.getLogger("mapreduce.worker")

AttemptKey = tuple  # (job, task, attempt)


# Handshakes of the worker's socket: each success after the first is a reconnect; a failure is
# a refusal (or, NO_DETAIL, a handshake broken off), logged once per session.
_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


@dataclass
class Unacked:
    """A DONE or FAIL the coordinator has not acknowledged yet."""

    command: bytes
    header: dict
    sent: float = float("-inf")  # when it last left (-inf: never)
    wait: float = 0.0  # how long after that it goes again without an ACK: doubles each time


class Worker:
    def __init__(
        self,
        connect: str | None,
        capacity: int = 1,
        *,
        elect: str | None = None,
        secret: bytes | None = None,
        heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL_S,
        liveness: int = defaults.HEARTBEAT_LIVENESS,
        reconnect_backoff: float = defaults.RECONNECT_BACKOFF_MIN_S,
        parent_pid: int | None = None,
        worker_id: str | None = None,
        keys_dir: str | None = None,
        keys_required: bool | None = None,
        insecure: bool = False,
    ):
        self.insecure = insecure
        # One address, a comma-separated list (each tried in turn), or the elected leader.
        self.addresses = Addresses(connect, elect)
        self.connect = self.addresses.describe()
        # An address found later (an election's leader) that is not loopback needs keys given
        # (this user's own key set, used when none are given, is one machine's).
        self.keys_required = not keys_dir if keys_required is None else keys_required
        self.capacity = max(1, capacity)
        self.secret = secret
        self.interval = heartbeat_interval
        self.expiry = heartbeat_interval * liveness
        self.reconnect_backoff = reconnect_backoff  # the first wait; doubles up to the maximum
        self.parent_pid = parent_pid
        self.keys_dir = keys_dir
        self.id = worker_id or f"{pysocket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        # The same routing id on every socket: a reconnecting worker arrives as itself. (At most
        # 255 bytes, and not starting with a zero byte, which ZeroMQ reserves.)
        self.routing_id = f"w:{self.id}".encode()[:255]
        self.unacked: dict[AttemptKey, Unacked] = {}
        self.known = 0  # the highest TASK number heard of in this session (protocol.py)
        self.session = ""  # this connection's: READY and reports name it, RECONNECT answers it
        self._refusal_told = ""  # the session whose refused handshake was logged
        self.stopping = False
        self.slots: list[ExecutorSlot] = []
        # Signals write a byte here (signal.set_wakeup_fd), which wakes the poll at once.
        self.wakeup_fd, self._wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_write, False)

    def run(self) -> int:
        """Serve until stopped; returns the process exit status."""
        # The task code (pyarrow & co.) was loaded with the executor module, before any fork. The
        # first executors are forked before the ZeroMQ context exists; replacements (after an
        # executor dies, or is killed to cancel its attempt) are forked later, while it runs. An
        # executor never uses ZeroMQ: it talks to this process over a pipe, a forked child has
        # none of the context's I/O threads, and the socket descriptors it inherits go unused.
        self.slots = [ExecutorSlot() for _ in range(self.capacity)]
        context = zmq.Context()
        backoff = self.reconnect_backoff
        status = 0
        try:
            while not self.stopping:
                outcome = self._session(context)
                if outcome == "refused":
                    status = 2
                    break
                if outcome == "served":
                    backoff = self.reconnect_backoff
                if outcome in ("silent", "served") and not self.stopping:
                    if not self.addresses.failed():
                        continue  # another address (the next of a list, a new leader): at once
                    log.warning(
                        "worker %s: coordinator %s silent; reconnecting in %g s",
                        self.id,
                        self.connect,
                        backoff,
                    )
                    # An election's new leader ends the wait as soon as it is published.
                    self.addresses.wait(backoff, lambda: self.stopping or self._orphaned())
                    self._sleep(0)
                    backoff = min(backoff * 2, defaults.RECONNECT_BACKOFF_MAX_S)
        finally:
            for slot in self.slots:
                slot.stop()
            context.term()
        return status

    def stop(self, *_args) -> None:
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline and not self._orphaned():
            time.sleep(min(0.1, seconds))
        if self._orphaned():
            self.stopping = True

    def _orphaned(self) -> bool:
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    def _session(self, context) -> str:
        """One connection's lifetime. Returns 'silent' (liveness ran out before we heard anything),
        'served' (the coordinator went silent after serving us), 'reconnect', 'refused' or 'stopped'."""
        address = self.addresses.current()
        if address is None:  # an election with no leader yet
            return "silent"
        if self.keys_required:
            require_keys_for(address, None, self.insecure, "worker")
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, defaults.MAX_MESSAGE_BYTES)
        sock.setsockopt(zmq.ROUTING_ID, self.routing_id)
        if self.keys_dir:
            security.secure_client(sock, self.keys_dir, "worker")
        # Handshakes of this socket: each one after the first is a reconnect, after which whatever
        # was in flight on the old connection may be gone.
        connections = sock.get_monitor_socket(_HANDSHAKE_EVENTS)
        sock.connect(address)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(connections, zmq.POLLIN)
        poller.register(self.wakeup_fd, zmq.POLLIN)
        for slot in self.slots:
            poller.register(slot.fileno(), zmq.POLLIN)
        # Results from the last session first: a coordinator that still knows this worker takes
        # them before READY tells it that the attempts still running here are gone.
        heard, self.known = self.known, 0  # what the last session heard of, it abandoned
        self.session = secrets.token_hex(4)
        self._resend_results(sock, time.monotonic(), every=True)
        self._send(
            sock,
            protocol.READY,
            {
                "worker": self.id,
                "host": pysocket.gethostname(),
                "pid": os.getpid(),
                "capacity": self.capacity,
                "session": self.session,
                "heard": heard,
                **protocol.runtime_versions(),
            },
        )
        heard_any = connected = False
        last_heard = last_report = time.monotonic()
        try:
            while not self.stopping:
                events = dict(poller.poll(int(self.interval * 1000 / 2)))
                now = time.monotonic()
                if self.wakeup_fd in events:
                    os.read(self.wakeup_fd, 512)  # a signal arrived; its handler has run
                if connections in events:
                    reconnected = self._handshakes(connections, address) and connected
                    connected = True
                    if reconnected:
                        log.info("worker %s: connection re-established; resending", self.id)
                        self._resend_results(sock, now, every=True)
                        last_report = -float("inf")  # and report at once
                if sock in events:
                    last_heard, heard_any = now, True
                    outcome = self._drain(sock, poller)
                    if outcome:
                        return outcome
                for slot in self.slots:
                    if slot.current and (slot.fileno() in events or not slot.process.is_alive()):
                        self._collect(sock, poller, slot)
                    elif not slot.current and not slot.process.is_alive():
                        self._replace_executor(poller, slot)
                self._resend_results(sock, now)
                if now - last_report >= self.interval:
                    self._send(sock, protocol.HEARTBEAT, self._report())
                    last_report = now
                if now - last_heard > self.expiry:
                    self._abandon_all(poller)
                    return "served" if heard_any else "silent"
                if self._orphaned():
                    self.stopping = True
            self._send(sock, protocol.BYE, {})
            sock.setsockopt(zmq.LINGER, 500)  # let the goodbye leave before the socket closes
            return "stopped"
        finally:
            sock.disable_monitor()
            connections.close(0)
            sock.close()

    def _handshakes(self, connections, address: str) -> bool:
        """Read the monitor's pending events; True when a handshake succeeded among them. A
        refused handshake is logged, once per session (ZeroMQ retries it many times a second):
        a coordinator that does not allow this worker's key tells it nothing else."""
        succeeded = False
        while True:
            try:
                event = security.recv_monitor_event(connections, zmq.NOBLOCK)
            except zmq.Again:
                return succeeded
            kind = event["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                succeeded = True
            elif self._refusal_told == self.session:
                continue
            elif kind != zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                self._refusal_told = self.session
                refusal = security.handshake_refusal(
                    address, kind, event["value"], self.keys_dir, "worker"
                )
                log.warning("worker %s: %s", self.id, refusal)
            else:  # broken off: likely a key mismatch; ZeroMQ keeps trying
                self._refusal_told = self.session
                broke_off = security.handshakes_broke_off(address, self.keys_dir, "worker")
                log.warning("worker %s: %s", self.id, broke_off)

    def _report(self) -> dict:
        """A worker heartbeat: what runs here, what waits for an ACK, the highest TASK heard of."""
        return {
            "session": self.session,
            "running": [list(slot.current) for slot in self.slots if slot.current],
            "finished": [list(key) for key in self.unacked],
            "known": self.known,
        }

    def _drain(self, sock, poller) -> str | None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return None
            try:
                message = protocol.receive(frames, self.secret)
            except Exception as exc:
                log.warning("worker %s: dropped a malformed message: %s", self.id, exc)
                continue
            if message is None:
                continue
            outcome = self._handle(sock, poller, message)
            if outcome:
                return outcome

    def _handle(self, sock, poller, message: Message) -> str | None:
        command, header = message.command, message.header
        for stamp in (header.get("seq"), header.get("assigned")):
            if type(stamp) is int and stamp > self.known:
                self.known = stamp
        if command == protocol.TASK:
            self._start_task(sock, header, message.blobs[0] if message.blobs else b"")
        elif command == protocol.ACK:
            self.unacked.pop(_key(header), None)
        elif command == protocol.CANCEL:
            key = _key(header)
            for slot in self.slots:
                if slot.current == key:
                    self._replace_executor(poller, slot)
        elif command == protocol.REFUSE:
            log.error(
                "worker %s: the coordinator refused this worker: %s", self.id, header.get("reason")
            )
            print(
                f"mapreduce worker: refused by the coordinator: {header.get('reason')}",
                file=sys.stderr,
            )
            return "refused"
        elif command == protocol.RECONNECT:
            if header.get("session") not in (None, self.session):
                return None  # it answers a message of a session already left: stale
            self._abandon_all(poller)
            return "reconnect"
        return None

    def _start_task(self, sock, header: dict, blob: bytes) -> None:
        key = _key(header)
        if key in self.unacked or any(slot.current == key for slot in self.slots):
            return  # a TASK sent again that had arrived after all: it runs, or has its result
        free = [slot for slot in self.slots if slot.current is None]
        if not free:
            self._result(
                sock,
                protocol.FAIL,
                {
                    **protocol.attempt_key(header),
                    "lost": True,
                    "error": {
                        "type": protocol.NO_FREE_SLOT,
                        "message": "worker had no free slot",
                        "traceback": "",
                    },
                },
            )
            return
        free[0].run(header, blob)

    def _collect(self, sock, poller, slot: ExecutorSlot) -> None:
        job, task, attempt = slot.current
        key = {"job": job, "task": task, "attempt": attempt}
        try:
            status, report = slot.conn.recv()
        except (EOFError, OSError):
            exit = slot.exit_status()
            self._replace_executor(poller, slot)
            self._result(
                sock,
                protocol.FAIL,
                {
                    **key,
                    "lost": True,
                    "error": {
                        "type": "ExecutorDied",
                        "traceback": "",
                        "message": f"the process running it {describe_exit(exit)} "
                        f"(worker {self.id})",
                        "exit": exit,
                    },
                },
            )
            return
        slot.current = None
        if status == "done":
            self._result(sock, protocol.DONE, {**key, "result": report})
        else:
            self._result(sock, protocol.FAIL, {**key, "lost": False, "error": report})

    def _result(self, sock, command: bytes, header: dict) -> None:
        """Send a DONE or FAIL and keep it until the coordinator acknowledges it."""
        self.unacked[_key(header)] = Unacked(command, header)
        self._resend_results(sock, time.monotonic())

    def _resend_results(self, sock, now: float, every: bool = False) -> None:
        """Send the unacknowledged results whose wait for an ACK is over (`every`: all of them,
        their waits starting again from one interval: the connection is new)."""
        for pending in list(self.unacked.values()):
            if every or now >= pending.sent + pending.wait:
                if not self._send(sock, pending.command, pending.header):
                    return  # the queue is full (or not connected yet): they go later
                pending.wait = (
                    self.interval
                    if every or not pending.wait
                    else min(2 * pending.wait, self.expiry)
                )
                pending.sent = now

    def _replace_executor(self, poller, slot: ExecutorSlot) -> None:
        poller.unregister(slot.fileno())
        slot.restart()
        poller.register(slot.fileno(), zmq.POLLIN)

    def _abandon_all(self, poller) -> None:
        for slot in self.slots:
            if slot.current:
                self._replace_executor(poller, slot)

    def _send(self, sock, command: bytes, header: dict) -> bool:
        """Send without waiting; False when the queue is full (or there is no connection yet).
        Results stay in `unacked` and go again later; a heartbeat waits for the next interval."""
        try:
            protocol.send(sock, Message(command, header), self.secret, flags=zmq.NOBLOCK)
            return True
        except zmq.Again:
            log.debug("worker %s: send queue full; a %r message waits", self.id, command)
            return False


def _key(header: dict) -> AttemptKey:
    return (header.get("job"), header.get("task"), header.get("attempt"))


def serve(connect: str | None, capacity: int = 1, **options) -> int:
    """Run a worker in this process until SIGTERM/SIGINT; returns the exit status."""
    worker = Worker(connect, capacity, **options)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    signal.set_wakeup_fd(worker._wakeup_write)
    return worker.run()
