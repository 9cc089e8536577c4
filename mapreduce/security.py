"""Who may connect, and as what: CURVE keys for every tcp socket, roles for the keys, and the rule
that refuses an open coordinator.

Job code travels as cloudpickle, so whoever can talk to the coordinator can run code on every
worker, and whoever can pose as the coordinator can run code on a worker. So:

- the coordinator has a key pair and accepts only the public keys in its allow-list directories,
  checked by ZeroMQ's ZAP handshake (RFC 27; `ZapHandler` answers it) before any message is
  delivered; every refused handshake is logged (rate-limited) with the peer's address and why,
  since the refused peer itself is told nothing it could show;
- each allowed key has a role: `authorized/workers/` keys may only serve as workers,
  `authorized/clients/` keys may only submit, watch, cancel and read status (`may_send`, which
  the coordinator's loop asks about every message, by the role ZAP gave its sender);
- workers and clients have key pairs and know the coordinator's public key, so they talk only to
  the real coordinator, encrypted;
- with no --keys, `coordinator`, `worker`, `submit` and `status` use this user's own key set
  (`default_keys_dir()`, made on first use), so another local user cannot use a coordinator on
  loopback; `--insecure` alone turns keys off (today's open mode, with a warning), and binding
  anything but loopback without --keys is refused unless the operator says `--insecure`.

Key directory layout (made by `mapreduce keys generate DIR`, or on first use for the default set):
    coordinator.key, coordinator.key_secret     the coordinator's pair
    worker.key, worker.key_secret               shared by the workers
    client.key, client.key_secret               for `submit` and `status`
    authorized/workers/*.key                    public keys allowed to serve as workers
    authorized/clients/*.key                    public keys allowed to submit and read status
A key directory of an earlier version has its allowed keys directly in `authorized/`: they are
still accepted, in both roles (as they were), with a warning that says how to split them.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import logging
import os
import shutil
import socket as pysocket
import struct
import tempfile
import threading
import time
from dataclasses import dataclass

import zmq
import zmq.auth
from zmq.utils import z85

from . import defaults, protocol
from .errors import MapReduceError

log = logging.getLogger("mapreduce.security")

ROLES = ("coordinator", "worker", "client")
AUTHORIZED = "authorized"
# The allow-list directory of each role a peer's key may have, under KEYS/authorized/.
ROLE_DIRS = {"worker": "workers", "client": "clients"}
# What a peer of each role may send the coordinator. A key allowed in both roles may send both.
ROLE_COMMANDS = {
    "worker": frozenset(
        {protocol.READY, protocol.DONE, protocol.FAIL, protocol.BYE, protocol.HEARTBEAT}
    ),
    "client": frozenset(protocol.CLIENT_COMMANDS),
}
ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # where ZeroMQ asks (RFC 27)


class KeysError(MapReduceError):
    """Key files missing or unreadable."""


# ---- key sets ------------------------------------------------------------------------------------


def default_keys_dir() -> str:
    """This user's own key set: `$XDG_CONFIG_HOME/mapreduce/keys` (by default
    `~/.config/mapreduce/keys`)."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config, "mapreduce", "keys")


def _write_key_set(directory: str) -> list[str]:
    """The three key pairs and the allow-lists (the worker's and the client's keys allowed in
    their roles) in the existing, empty `directory`; returns the files written."""
    os.chmod(directory, 0o700)
    written = []
    for role in ROLES:
        public, secret = zmq.auth.create_certificates(directory, role)
        os.chmod(secret, 0o600)
        written += [public, secret]
        if role in ROLE_DIRS:
            allowed = os.path.join(directory, AUTHORIZED, ROLE_DIRS[role])
            os.makedirs(allowed, mode=0o700, exist_ok=True)
            written.append(shutil.copy(public, os.path.join(allowed, f"{role}.key")))
    return written


def generate_keys(directory: str) -> list[str]:
    """Create the key pairs and the allow-lists; refuses to overwrite existing keys."""
    existing = [r for r in ROLES if os.path.exists(os.path.join(directory, f"{r}.key_secret"))]
    if existing:
        raise KeysError(
            f"'{directory}' already holds keys ({', '.join(existing)}); keys are never "
            f"overwritten. Choose another directory, or delete the old keys first."
        )
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return _write_key_set(directory)


def ensure_keys(directory: str) -> str:
    """`directory`, holding a key set: made on first use, all at once. The set is written in a
    private temporary directory beside it and renamed into place, so two processes starting
    together never see half a set: the first rename wins, the other's set is thrown away."""
    if os.path.exists(os.path.join(directory, "coordinator.key_secret")):
        return directory
    parent = os.path.dirname(os.path.abspath(directory))
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".keys-", dir=parent)  # mode 0700
    except OSError as exc:
        raise KeysError(
            f"cannot create this user's key set in '{directory}': {exc}. Make its parent "
            f"directory writable, or pass --keys DIR (from `mapreduce keys generate DIR`)."
        ) from None
    try:
        _write_key_set(staging)
        try:
            os.rename(staging, directory)
            log.info("created this user's key set in %s (used when --keys is not given)", directory)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not os.path.exists(os.path.join(directory, "coordinator.key_secret")):
        raise KeysError(
            f"'{directory}' exists but holds no key set (no coordinator.key_secret). Move it "
            f"away so that a key set can be created there, or pass --keys DIR."
        )
    return directory


def authorize_key(directory: str, role: str, public_key_file: str) -> str:
    """Allow the public key in `public_key_file` in `role` (worker or client): copied into
    DIRECTORY/authorized/<role>s/ under its file name. Returns where it went."""
    public, secret = _load(public_key_file, want_secret=False)
    if secret:
        raise KeysError(
            f"'{public_key_file}' holds a secret key: authorize the public .key file that goes "
            f"with it, and never copy a .key_secret file to another machine."
        )
    allowed = os.path.join(directory, AUTHORIZED, ROLE_DIRS[role])
    os.makedirs(allowed, mode=0o700, exist_ok=True)
    stem = os.path.basename(public_key_file).removesuffix(".key")
    # Under its own name; when that is taken by another key (every worker's is worker.key), under
    # its name and a digest of the key, so that authorizing the same key again changes nothing.
    for name in (stem, f"{stem}-{hashlib.sha256(public).hexdigest()[:12]}"):
        target = os.path.join(allowed, f"{name}.key")
        if not os.path.exists(target):
            shutil.copy(public_key_file, target)
            return target
        if _load(target, want_secret=False)[0] == public:
            return target
    raise KeysError(f"'{target}' already allows another key: remove it, or rename the new file.")


def keys_for(keys_dir: str | None, insecure: bool, addresses: list[str], role: str) -> str | None:
    """The key directory `role` ("coordinator", "worker" or "client") uses at `addresses`: the
    one given; none with --insecure (with a warning: open to every local user); else this user's
    own key set, made on first use. A non-loopback address without --keys is refused unless
    --insecure (`require_keys_for`): the default set is one machine's."""
    for address in addresses:
        require_keys_for(address, keys_dir, insecure, role)
    if keys_dir:
        return keys_dir
    if insecure:
        if all(is_local_address(address) for address in addresses):
            log.warning(
                "%s: WITHOUT keys (--insecure): every user of this machine can %s",
                role,
                "submit job code that runs as you on the workers"
                if role == "coordinator"
                else "pose as the coordinator and run code here"
                if role == "worker"
                else "see and change what this client sends",
            )
        return None
    return ensure_keys(default_keys_dir())


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


class RefusalLog:
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


def recv_monitor_event(monitor, flags: int = 0) -> dict:
    """One event of a socket monitor ({"event", "value", "endpoint"}, as pyzmq's
    recv_monitor_message gives it), decoded here: zmq.utils.monitor imports zmq.asyncio, and
    asyncio with it, which cost every worker and `mapreduce run` 0.07 s of CPU at start-up."""
    frames = monitor.recv_multipart(flags)
    event, value = struct.unpack("=hi", frames[0][:6])
    return {"event": zmq.Event(event), "value": value, "endpoint": frames[1]}


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

    def __init__(self, socket: zmq.Socket, refusals: RefusalLog):
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
                event = recv_monitor_event(self._events)
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
            "it has no CURVE keys (a worker or client started with --insecure; this "
            "coordinator uses keys, so it accepts only peers with an allowed key)"
        )
    if code == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return (
            "its handshake did not decrypt: it holds another coordinator's public key (its "
            "coordinator.key is not this coordinator's: another user's or another key set)"
        )
    return f"ZeroMQ protocol error {code:#x} in the handshake"


class AllowList:
    """The public keys allowed to connect and the roles of each, read from KEYS/authorized/ again
    whenever a file there changes (checked at each handshake: one directory listing per
    connection), so a key added admits its peer, and a key removed refuses its next connection,
    without restarting the coordinator."""

    def __init__(self, keys_dir: str):
        self.location = os.path.join(keys_dir, AUTHORIZED)
        self._listing: list | None = None
        self.roles: dict[bytes, frozenset] = {}  # z85 public key -> its roles

    def _files(self) -> list[tuple[str, str]]:
        """(role, path) of every allowed key file; role "" for the flat layout of old."""
        found = []
        for entry in os.scandir(self.location):
            if entry.is_file() and entry.name.endswith(".key"):
                found.append(("", entry.path))
        for role, sub in ROLE_DIRS.items():
            directory = os.path.join(self.location, sub)
            if os.path.isdir(directory):
                found += [
                    (role, entry.path)
                    for entry in os.scandir(directory)
                    if entry.is_file() and entry.name.endswith(".key")
                ]
        return sorted(found)

    def reload_if_changed(self) -> None:
        try:
            files = self._files()
            listing = [(role, path, os.stat(path).st_mtime_ns) for role, path in files]
        except OSError as exc:
            log.warning(
                "cannot read the allowed keys in %s (%s); keeping the last list read",
                self.location,
                exc,
            )
            return
        if listing == self._listing:
            return
        roles: dict[bytes, set] = {}
        flat = []
        for role, path in files:
            try:
                public, _ = zmq.auth.load_certificate(path)
            except (OSError, ValueError) as exc:
                log.warning("ignored allowed key file %s: %s", path, exc)
                continue
            if not public:
                continue
            if not role:
                flat.append(os.path.basename(path))
            roles.setdefault(public, set()).update([role] if role else ROLE_DIRS)
        if flat:
            log.warning(
                "allowed keys directly in %s (%s) are accepted in both roles, as in earlier "
                "versions: move worker keys to %s/workers/ and client keys to %s/clients/ so "
                "that a worker's key cannot submit jobs (`mapreduce keys authorize --role`)",
                self.location,
                ", ".join(flat),
                self.location,
                self.location,
            )
        if self._listing is not None:
            log.warning("allowed keys in %s changed: %d key(s) now", self.location, len(roles))
        self._listing = listing
        self.roles = {key: frozenset(value) for key, value in roles.items()}

    def user_id(self, public_key: bytes) -> str | None:
        """The ZAP user id of a peer with this (binary) public key: its roles joined by '+',
        or None when it is not allowed."""
        roles = self.roles.get(z85.encode(public_key))
        return "+".join(sorted(roles)) if roles else None


class ZapHandler:
    """Answers ZeroMQ's authentication requests (ZAP, RFC 27) for one context, in its own thread:
    a CURVE peer whose public key is allowed gets its roles as its user id; anything else is
    refused and logged (rate-limited). Only the public pyzmq socket API is used."""

    def __init__(self, context: zmq.Context, allow_list: AllowList, refusals: RefusalLog):
        self.allow_list = allow_list
        self._refusals = refusals
        self._socket = context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(ZAP_ENDPOINT)  # before the server socket binds: no request goes unasked
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="mapreduce-zap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._socket.poll(100):
                    self._socket.send_multipart(self.answer(self._socket.recv_multipart()))
        finally:
            self._socket.close(0)

    def answer(self, request: list[bytes]) -> list[bytes]:
        """The reply to one ZAP request: [version, request id, status code, status text, user
        id, metadata]."""
        if len(request) < 6 or request[0] != b"1.0":
            return [
                b"1.0",
                request[1] if len(request) > 1 else b"",
                b"400",
                b"bad request",
                b"",
                b"",
            ]
        _, request_id, _domain, address, _identity, mechanism, *credentials = request
        host = address.decode("utf-8", "replace")
        if mechanism != b"CURVE" or len(credentials) != 1 or len(credentials[0]) != 32:
            reason = f"it uses the {mechanism.decode('ascii', 'replace')} mechanism, not CURVE"
            self._refusals.refused(host, host, reason)
            return [b"1.0", request_id, b"400", b"CURVE only", b"", b""]
        self.allow_list.reload_if_changed()
        user_id = self.allow_list.user_id(credentials[0])
        if user_id is None:
            self._refusals.refused(
                host,
                host,
                f"its public key is not in {self.allow_list.location}/workers or /clients "
                f"(`mapreduce keys authorize --role worker|client KEYFILE` admits it)",
            )
            return [b"1.0", request_id, b"400", b"key not allowed", b"", b""]
        return [b"1.0", request_id, b"200", b"OK", user_id.encode(), b""]


@dataclass
class ServerSecurity:
    zap: ZapHandler
    monitor: _HandshakeMonitor

    def stop(self) -> None:
        """Stop the ZAP handler and the monitor (after the socket is closed)."""
        self.monitor.stop()
        self.zap.stop()


def secure_server(context: zmq.Context, socket: zmq.Socket, keys_dir: str) -> ServerSecurity:
    """Make `socket` a CURVE server accepting only the allow-listed public keys (before bind)."""
    public, secret = _load(os.path.join(keys_dir, "coordinator.key_secret"), want_secret=True)
    allow_list = AllowList(keys_dir)
    allow_list.reload_if_changed()
    if not allow_list.roles:
        raise KeysError(
            f"no allowed public keys in '{allow_list.location}': put the workers' .key files in "
            f"its workers/ and the clients' in its clients/ (`mapreduce keys authorize --role "
            f"worker|client KEYFILE`; `mapreduce keys generate` allows its own)."
        )
    refusals = RefusalLog()
    zap = ZapHandler(context, allow_list, refusals)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    socket.zap_domain = b"mapreduce"
    return ServerSecurity(zap, _HandshakeMonitor(socket, refusals))


def handshake_refusal(address: str, event: int, value: int, keys_dir: str | None, role: str) -> str:
    """One paragraph for a worker or client ("role") whose handshake the coordinator at `address`
    refused (a ZeroMQ monitor's HANDSHAKE_FAILED_AUTH or _PROTOCOL event and its value)."""
    head = f"the coordinator at {address} refused this {role}'s handshake"
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return (
            f"{head}: this {role}'s key ({keys_dir}/{role}.key) is not among the keys it allows "
            f"(it was started by another user, or with another key set). Its operator can allow "
            f"this key: `mapreduce keys authorize --role {role} {keys_dir}/{role}.key` (with "
            f"--keys THEIR_KEYS if it uses --keys; it is read again at once); or pass --keys "
            f"with a key set holding an allowed {role} key."
        )
    if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH and not keys_dir:
        return (
            f"{head}: it uses CURVE keys and this {role} has none (--insecure). A coordinator "
            f"using keys silently drops {role}s without the right key; leave out --insecure to "
            f"use your own key set (the one `mapreduce coordinator` uses when it is given no "
            f"--keys), or pass --keys KEYS, the directory from `mapreduce keys generate` that "
            f"holds {role}.key, {role}.key_secret and the coordinator's coordinator.key."
        )
    if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return (
            f"{head}: this {role} uses CURVE keys ({keys_dir}) but the coordinator does not (it "
            f"was started with --insecure). Pass --insecure too, or start the coordinator "
            f"without it."
        )
    return f"{head} (ZeroMQ protocol error {value:#x}). Check that both sides use the same keys."


def handshakes_broke_off(address: str, keys_dir: str | None, role: str) -> str:
    """What a worker or client is told when every handshake broke off."""
    if not keys_dir:
        return (
            f"Every handshake with the coordinator at {address} broke off, which is what happens "
            f"when it uses keys (all do unless started with --insecure) and this {role} has none "
            f"(--insecure): leave out --insecure to use your own key set, or pass --keys KEYS."
        )
    return (
        f"Every encrypted handshake with the coordinator at {address} broke off, which is what "
        f"happens when {keys_dir}/coordinator.key is not the public key of the coordinator at "
        f"that address (it was started by another user, or with another key set). To share a "
        f"coordinator: copy its coordinator.key into a key set of yours and have its operator "
        f"allow your {role}.key (`mapreduce keys authorize --role {role} FILE`), then pass "
        f"--keys with that key set."
    )


def sender_role(frame: zmq.Frame) -> str:
    """The roles ZAP gave the sender of a received frame (a socket with keys; copy=False)."""
    return str(frame.get("User-Id") or "")


def may_send(roles: str | None, command: bytes) -> bool:
    """Whether a peer with these roles (a ZAP user id; None: a coordinator without keys, which
    has no roles to tell apart) may send `command` to the coordinator."""
    if roles is None:
        return True
    return any(command in ROLE_COMMANDS.get(role, ()) for role in roles.split("+"))


def role_refusal(roles: str, command: bytes) -> str:
    """One paragraph for a peer whose key's role does not allow what it sent."""
    wanted = "client" if command in ROLE_COMMANDS["client"] else "worker"
    return (
        f"the coordinator allows this key only as a {roles or 'peer of no role'}, not as a "
        f"{wanted}: a worker's key cannot submit, cancel or read status, and a client's key "
        f"cannot serve as a worker. Use the {wanted}'s key pair ({wanted}.key and "
        f"{wanted}.key_secret of the key set), or allow this key as a {wanted} on the "
        f"coordinator: `mapreduce keys authorize --role {wanted} PUBLIC_KEY_FILE`."
    )


def secure_client(socket: zmq.Socket, keys_dir: str, role: str) -> None:
    """Make `socket` a CURVE client with `role`'s key pair that trusts only the coordinator's key."""
    public, secret = _load(os.path.join(keys_dir, f"{role}.key_secret"), want_secret=True)
    server_public, _ = _load(os.path.join(keys_dir, "coordinator.key"), want_secret=False)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = server_public
