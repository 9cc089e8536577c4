"""Who may connect: CURVE keys for every tcp socket, and the rule that refuses an open bind.

Job code travels as cloudpickle, so whoever can talk to the coordinator can run code on every
worker, and whoever can pose as the coordinator can run code on a worker. So:

- the coordinator has a key pair and accepts only the public keys in its allow-list directory
  (`KEYS/authorized/`), checked by ZeroMQ's ZAP handshake before any message is delivered; every
  refused handshake is logged (rate-limited) with the peer's address and why, since the refused
  peer itself is told nothing it could show;
- workers and clients have key pairs and know the coordinator's public key, so they talk only to
  the real coordinator, encrypted;
- binding anything but loopback without keys is refused unless the operator says `--insecure`.

Key directory layout (made by `mapreduce keys generate DIR`):
    coordinator.key, coordinator.key_secret     the coordinator's pair
    worker.key, worker.key_secret               shared by the workers
    client.key, client.key_secret               for `submit` and `status`
    authorized/worker.key, authorized/client.key  the coordinator's allow-list (add more .key files)
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import socket as pysocket
import threading
import time
from dataclasses import dataclass

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from . import defaults
from .errors import MapReduceError

log = logging.getLogger("mapreduce.security")

ROLES = ("coordinator", "worker", "client")
AUTHORIZED = "authorized"


class KeysError(MapReduceError):
    """Key files missing or unreadable."""


def generate_keys(directory: str) -> list[str]:
    """Create the key pairs and the allow-list; refuses to overwrite existing keys."""
    existing = [r for r in ROLES if os.path.exists(os.path.join(directory, f"{r}.key_secret"))]
    if existing:
        raise KeysError(
            f"'{directory}' already holds keys ({', '.join(existing)}); keys are never "
            f"overwritten. Choose another directory, or delete the old keys first."
        )
    authorized = os.path.join(directory, AUTHORIZED)
    os.makedirs(authorized, exist_ok=True)
    os.chmod(directory, 0o700)
    written = []
    for role in ROLES:
        public, secret = zmq.auth.create_certificates(directory, role)
        os.chmod(secret, 0o600)
        written += [public, secret]
        if role != "coordinator":
            shutil.copy(public, os.path.join(authorized, f"{role}.key"))
            written.append(os.path.join(authorized, f"{role}.key"))
    return written


def is_local_address(address: str) -> bool:
    """ipc/inproc endpoints and tcp on a loopback address never leave this machine."""
    transport, _, rest = address.partition("://")
    if transport in ("ipc", "inproc"):
        return True
    if transport != "tcp":
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or interface name: assume it is reachable from outside


def require_keys_for(address: str, keys_dir: str | None, insecure: bool, role: str) -> None:
    """Refuse to use a non-local address without keys, unless the user said --insecure.

    The coordinator would accept code from anyone; a worker would run code from whoever answers at
    that address; a client would hand its job to whoever answers."""
    if keys_dir or is_local_address(address):
        return
    if insecure:
        log.warning(
            "%s: using %s WITHOUT authentication or encryption (--insecure): anyone who "
            "can reach it can run code on the workers",
            role,
            address,
        )
        return
    verb = "listen on" if role == "coordinator" else "connect to"
    raise MapReduceError(
        f"refusing to {verb} {address} without keys: job code is pickled Python, so anyone who "
        f"can reach it could run code on the workers. Create keys with `mapreduce keys generate "
        f"KEYS`, copy KEYS to the workers' and clients' machines, and pass --keys KEYS to "
        f"`coordinator`, `worker`, `submit` and `status`. On a trusted network you may instead "
        f"pass --insecure (to each of them)."
    )


def _load(path: str, want_secret: bool):
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeysError(
            f"cannot read key file '{path}': {exc}. Create keys with `mapreduce keys generate DIR`."
        ) from None
    if want_secret and not secret:
        raise KeysError(f"'{path}' holds no secret key")
    return public, secret


class _RefusalLog:
    """Warnings about refused handshakes: at most one per host and reason every `interval` seconds
    (a peer that keeps retrying, or a scanner, must not flood the log); the next one says how many
    were left out. Called from the authenticator's and the monitor's threads."""

    _MAX_REMEMBERED = 10_000

    def __init__(self, interval: float = defaults.REFUSAL_LOG_INTERVAL_S):
        self._interval = interval
        self._lock = threading.Lock()
        self._seen: dict = {}  # (host, reason) -> [when last logged, refusals not logged]

    def refused(self, host: str, address: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get((host, reason))
            if entry is not None and now - entry[0] < self._interval:
                entry[1] += 1
                return
            left_out = entry[1] if entry is not None else 0
            if len(self._seen) >= self._MAX_REMEMBERED:
                self._seen.clear()
            self._seen[(host, reason)] = [now, 0]
        log.warning(
            "refused a connection from %s: %s%s",
            address,
            reason,
            f" ({left_out} more from {host} for this reason in the last {self._interval:g} s)"
            if left_out
            else "",
        )


class _HandshakeMonitor:
    """Logs the handshakes ZeroMQ itself refuses, before the ZAP handler is asked: a peer with no
    CURVE keys (mechanism mismatch) or with another coordinator's public key (its HELLO does not
    decrypt), and handshakes the peer breaks off (such a peer often resets the connection before
    its greeting is read, so this side cannot tell which it was). ZeroMQ reports these with the
    coordinator's own endpoint, not the peer's, so a thread reads the peer's address from each
    connection as it is accepted (getpeername on the accepted descriptor). A connection refused
    within microseconds can close before that read: its address is then logged as unknown."""

    _EVENTS = (
        zmq.EVENT_ACCEPTED
        | zmq.EVENT_DISCONNECTED
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    )

    def __init__(self, socket: zmq.Socket, refusals: _RefusalLog):
        self._events = socket.get_monitor_socket(self._EVENTS)
        self._refusals = refusals
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="mapreduce-handshakes", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _watch(self) -> None:
        peers: dict = {}  # descriptor -> the address of the connection accepted on it
        failure = None  # the reason of a failed handshake, until its disconnection
        try:
            while not self._stopping.is_set():
                if not self._events.poll(100):
                    continue
                event = recv_monitor_message(self._events)
                kind, value = event["event"], event["value"]
                if kind == zmq.EVENT_ACCEPTED:
                    peers[value] = _peer_of_descriptor(value)
                elif kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
                    failure = _protocol_refusal(value)
                elif kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                    failure = (
                        f"it broke off the handshake ({os.strerror(value)}), as a peer "
                        f"without CURVE keys, or with another coordinator's public key, does"
                    )
                elif kind == zmq.EVENT_DISCONNECTED:
                    # ZeroMQ reports a failed handshake, then at once the disconnection it causes.
                    peer = peers.pop(value, None)
                    if failure is not None:
                        host, address = peer or ("?", "an unknown address (it closed at once)")
                        self._refusals.refused(host, address, failure)
                        failure = None
        finally:
            self._events.close(0)


def _peer_of_descriptor(descriptor: int):
    """(host, "host:port") of the connected socket `descriptor`, which stays ZeroMQ's: it is only
    looked at, never closed. None when it is already gone."""
    try:
        connection = pysocket.socket(fileno=descriptor)
    except OSError:
        return None
    try:
        host, port = connection.getpeername()[:2]
        return host, f"{host}:{port}"
    except (OSError, ValueError, TypeError):
        return None
    finally:
        connection.detach()


def _protocol_refusal(code: int) -> str:
    if code == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return (
            "it has no CURVE keys (a worker or client started without --keys; this "
            "coordinator uses keys, so it accepts only peers with an allowed key)"
        )
    if code == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return (
            "its handshake did not decrypt: it holds another coordinator's public key (its "
            "coordinator.key is not this coordinator's)"
        )
    return f"ZeroMQ protocol error {code:#x} in the handshake"


@dataclass
class ServerSecurity:
    authenticator: ThreadAuthenticator
    monitor: _HandshakeMonitor

    def stop(self) -> None:
        """Stop the authenticator and the monitor (after the socket is closed)."""
        self.monitor.stop()
        self.authenticator.stop()


class _AllowListAuthenticator(ThreadAuthenticator):
    """Checks each handshake against the public keys in `authorized/` as they are at that moment,
    so a key added there admits its worker, and a key removed refuses its next connection, without
    restarting the coordinator. Each refusal is logged with the peer's address (rate-limited)."""

    def __init__(self, context, location: str, refusals: _RefusalLog):
        super().__init__(context)
        self._location = location
        self._listing: list | None = None
        self._address = "?"
        self._refusals = refusals

    async def handle_zap_message(self, msg):
        self._address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        self._reload_if_changed()
        await super().handle_zap_message(msg)

    def _reload_if_changed(self) -> None:
        # One directory listing per handshake (handshakes are rare: one per connection).
        try:
            listing = sorted(
                (entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
                for entry in os.scandir(self._location)
                if entry.name.endswith(".key")
            )
        except OSError as exc:
            log.warning(
                "cannot read the allowed keys in %s (%s); keeping the last list read",
                self._location,
                exc,
            )
            return
        if listing != self._listing:
            if self._listing is not None:
                log.warning(
                    "allowed keys in %s changed: %d key(s) now", self._location, len(listing)
                )
            self._listing = listing
            self.configure_curve(domain="*", location=self._location)

    def _send_zap_reply(self, request_id, status_code, status_text, user_id="anonymous"):
        if status_code != b"200":
            self._refusals.refused(
                self._address,
                self._address,
                f"its public key is not in {self._location} (add its .key file "
                f"there to admit it; ZAP said: "
                f"{status_text.decode('utf-8', 'replace')})",
            )
        super()._send_zap_reply(request_id, status_code, status_text, user_id)


def secure_server(context: zmq.Context, socket: zmq.Socket, keys_dir: str) -> ServerSecurity:
    """Make `socket` a CURVE server accepting only the allow-listed public keys (before bind)."""
    public, secret = _load(os.path.join(keys_dir, "coordinator.key_secret"), want_secret=True)
    authorized = os.path.join(keys_dir, AUTHORIZED)
    if not os.path.isdir(authorized) or not any(n.endswith(".key") for n in os.listdir(authorized)):
        raise KeysError(
            f"no allowed public keys in '{authorized}': put the workers' and clients' "
            f".key files there (`mapreduce keys generate` does)."
        )
    refusals = _RefusalLog()
    authenticator = _AllowListAuthenticator(context, authorized, refusals)
    authenticator.start()
    authenticator._reload_if_changed()
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return ServerSecurity(authenticator, _HandshakeMonitor(socket, refusals))


def secure_client(socket: zmq.Socket, keys_dir: str, role: str) -> None:
    """Make `socket` a CURVE client with `role`'s key pair that trusts only the coordinator's key."""
    public, secret = _load(os.path.join(keys_dir, f"{role}.key_secret"), want_secret=True)
    server_public, _ = _load(os.path.join(keys_dir, "coordinator.key"), want_secret=False)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = server_public
