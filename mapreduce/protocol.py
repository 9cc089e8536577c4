"""The wire protocol, defined once and imported by the coordinator, the workers and clients.

A message is a list of ZeroMQ frames (the ROUTER adds the peer's routing id in front on its side):

    [PROTOCOL, command (1 byte), mac, header (JSON), blob...]

- PROTOCOL names the protocol and its version, so a peer of another version is told so instead of
  failing somewhere inside a decoder.
- The header is JSON: the coordinator never unpickles anything a peer sends. Job code travels as an
  opaque cloudpickle blob that only workers load, after the mac has been checked.
- mac is HMAC-SHA256 over everything after it, keyed with a per-run secret (`mapreduce run` shares
  one with its own worker processes), or empty when no secret is configured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import platform
from dataclasses import dataclass, field

import cloudpickle

from .errors import ProtocolError

PROTOCOL = b"MRP/1"

# Commands. Worker -> coordinator:
READY = b"R"  # register / ask for work: {worker, host, pid, python, cloudpickle, capacity}
DONE = b"D"  # an attempt finished: {job, task, attempt, result}
FAIL = b"F"  # an attempt failed: {job, task, attempt, error, lost}
BYE = b"B"  # the worker is leaving cleanly: {}
# Coordinator -> worker:
TASK = b"T"  # run an attempt: {job, task, attempt, kind, ...} + [job code blob]
CANCEL = b"C"  # abandon an attempt (another attempt won, or the job ended): {job, task, attempt}
REFUSE = b"X"  # registration refused, do not retry: {reason}
RECONNECT = b"Q"  # you are not registered (declared dead, or I restarted): reconnect and send READY
# Both ways:
HEARTBEAT = b"H"  # {}; any message counts as a heartbeat too
# Client -> coordinator (each answered by exactly one reply carrying the request's "request" id):
SUBMIT = b"S"  # {job submission, python, cloudpickle} + [job code blob] -> ACCEPTED | REJECTED
WATCH = b"W"  # {job} -> JOB_STATE
CANCEL_JOB = b"K"  # {job} -> JOB_STATE
STATUS = b"?"  # {} -> STATUS_REPLY
# Coordinator -> client:
ACCEPTED = b"A"  # {job}
REJECTED = b"E"  # {error}: one paragraph for the user
JOB_STATE = b"P"  # {job, status, progress, counters, error}
STATUS_REPLY = b"L"  # {jobs: [...], workers: [...]}

CLIENT_COMMANDS = {SUBMIT, WATCH, CANCEL_JOB, STATUS}
COMMANDS = {
    READY,
    DONE,
    FAIL,
    BYE,
    TASK,
    CANCEL,
    REFUSE,
    RECONNECT,
    HEARTBEAT,
    *CLIENT_COMMANDS,
    ACCEPTED,
    REJECTED,
    JOB_STATE,
    STATUS_REPLY,
}


@dataclass
class Message:
    command: bytes
    header: dict = field(default_factory=dict)
    blobs: list = field(default_factory=list)


def _mac(secret: bytes | None, parts: list[bytes]) -> bytes:
    if not secret:
        return b""
    digest = hmac.new(secret, digestmod=hashlib.sha256)
    for part in parts:
        # Length-prefix each part so frames cannot be re-split into a different message with the same mac.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def encode(message: Message, secret: bytes | None = None) -> list[bytes]:
    header = json.dumps(message.header, separators=(",", ":")).encode()
    body = [message.command, header, *message.blobs]
    return [PROTOCOL, message.command, _mac(secret, body), header, *message.blobs]


def decode(frames: list[bytes], secret: bytes | None = None) -> Message:
    """Parse frames from a peer; raises ProtocolError for anything that is not a valid message."""
    if len(frames) < 4:
        raise ProtocolError(f"message has {len(frames)} frames, expected at least 4")
    protocol, command, mac, header, *blobs = frames
    if protocol != PROTOCOL:
        raise ProtocolError(f"peer speaks {bytes(protocol[:20])!r}, this side speaks {PROTOCOL!r}")
    if command not in COMMANDS:
        raise ProtocolError(f"unknown command {bytes(command[:4])!r}")
    expected = _mac(secret, [command, header, *blobs])
    if not hmac.compare_digest(mac, expected):
        raise ProtocolError("message authentication failed (wrong or missing run secret)")
    try:
        parsed = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ProtocolError("header is not a JSON object")
    return Message(command, parsed, list(blobs))


def runtime_versions() -> dict:
    """What READY advertises: job code pickled by one cloudpickle/Python must load in the other."""
    major, minor, _ = platform.python_version_tuple()
    return {"python": f"{major}.{minor}", "cloudpickle": cloudpickle.__version__}


def version_mismatch(header: dict, peer: str = "worker") -> str | None:
    """A sentence naming both versions when a peer's runtime differs from ours (job code pickled by
    one cloudpickle/Python cannot be loaded by another), else None."""
    ours = runtime_versions()
    for name, mine in ours.items():
        theirs = header.get(name)
        if theirs != mine:
            return (
                f"the {peer} runs {name} {theirs}, the coordinator runs {name} {mine}; job "
                f"code pickled by one cannot be loaded by the other: install the same versions"
            )
    return None
