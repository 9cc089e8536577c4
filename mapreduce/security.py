"""Who may connect: CURVE keys for every tcp socket, and the rule that refuses an open bind.

Job code travels as cloudpickle, so whoever can talk to the coordinator can run code on every
worker, and whoever can pose as the coordinator can run code on a worker. So:

- the coordinator has a key pair and accepts only the public keys in its allow-list directory
  (`KEYS/authorized/`), checked by ZeroMQ's ZAP handshake before any message is delivered;
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
from dataclasses import dataclass

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

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
        raise KeysError(f"'{directory}' already holds keys ({', '.join(existing)}); keys are never "
                        f"overwritten. Choose another directory, or delete the old keys first.")
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
        return False       # a host name or interface name: assume it is reachable from outside


def require_keys_for(address: str, keys_dir: str | None, insecure: bool, role: str) -> None:
    """Refuse to use a non-local address without keys, unless the user said --insecure.

    The coordinator would accept code from anyone; a worker would run code from whoever answers at
    that address; a client would hand its job to whoever answers."""
    if keys_dir or is_local_address(address):
        return
    if insecure:
        log.warning("%s: using %s WITHOUT authentication or encryption (--insecure): anyone who "
                    "can reach it can run code on the workers", role, address)
        return
    verb = "listen on" if role == "coordinator" else "connect to"
    raise MapReduceError(
        f"refusing to {verb} {address} without keys: job code is pickled Python, so anyone who "
        f"can reach it could run code on the workers. Create keys with `mapreduce keys generate "
        f"KEYS`, copy KEYS to the workers' and clients' machines, and pass --keys KEYS to "
        f"`coordinator`, `worker`, `submit` and `status`. On a trusted network you may instead "
        f"pass --insecure (to each of them).")


def _load(path: str, want_secret: bool):
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeysError(f"cannot read key file '{path}': {exc}. Create keys with `mapreduce keys "
                        f"generate DIR`.") from None
    if want_secret and not secret:
        raise KeysError(f"'{path}' holds no secret key")
    return public, secret


@dataclass
class ServerSecurity:
    authenticator: ThreadAuthenticator

    def stop(self) -> None:
        self.authenticator.stop()


class _AllowListAuthenticator(ThreadAuthenticator):
    """Checks each handshake against the public keys in `authorized/` as they are at that moment,
    so a key added there admits its worker, and a key removed refuses its next connection, without
    restarting the coordinator. Logs each address that fails the handshake once (a scanner should
    not flood the log)."""

    def __init__(self, context, location: str):
        super().__init__(context)
        self._location = location
        self._listing = None
        self._address = "?"
        self._logged: set = set()

    async def handle_zap_message(self, msg):
        self._address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        self._reload_if_changed()
        await super().handle_zap_message(msg)

    def _reload_if_changed(self) -> None:
        # One directory listing per handshake (handshakes are rare: one per connection).
        try:
            listing = sorted((entry.name, entry.stat().st_mtime_ns, entry.stat().st_size)
                             for entry in os.scandir(self._location) if entry.name.endswith(".key"))
        except OSError as exc:
            log.warning("cannot read the allowed keys in %s (%s); keeping the last list read",
                        self._location, exc)
            return
        if listing != self._listing:
            if self._listing is not None:
                log.warning("allowed keys in %s changed: %d key(s) now", self._location, len(listing))
            self._listing = listing
            self.configure_curve(domain="*", location=self._location)

    def _send_zap_reply(self, request_id, status_code, status_text, user_id="anonymous"):
        if status_code != b"200" and self._address not in self._logged and len(self._logged) < 10_000:
            self._logged.add(self._address)
            log.warning("refused a connection from %s: %s", self._address,
                        status_text.decode("utf-8", "replace"))
        super()._send_zap_reply(request_id, status_code, status_text, user_id)


def secure_server(context: zmq.Context, socket: zmq.Socket, keys_dir: str) -> ServerSecurity:
    """Make `socket` a CURVE server accepting only the allow-listed public keys (before bind)."""
    public, secret = _load(os.path.join(keys_dir, "coordinator.key_secret"), want_secret=True)
    authorized = os.path.join(keys_dir, AUTHORIZED)
    if not os.path.isdir(authorized) or not any(n.endswith(".key") for n in os.listdir(authorized)):
        raise KeysError(f"no allowed public keys in '{authorized}': put the workers' and clients' "
                        f".key files there (`mapreduce keys generate` does).")
    authenticator = _AllowListAuthenticator(context, authorized)
    authenticator.start()
    authenticator._reload_if_changed()
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return ServerSecurity(authenticator)


def secure_client(socket: zmq.Socket, keys_dir: str, role: str) -> None:
    """Make `socket` a CURVE client with `role`'s key pair that trusts only the coordinator's key."""
    public, secret = _load(os.path.join(keys_dir, f"{role}.key_secret"), want_secret=True)
    server_public, _ = _load(os.path.join(keys_dir, "coordinator.key"), want_secret=False)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_serverkey = server_public
