"""The wire protocol, defined once and imported by the coordinator, the workers and clients.

A message is a list of ZeroMQ frames (the ROUTER adds the peer's routing id in front on its side):

    [PROTOCOL, command (1 byte), mac, header (JSON), blob...]

- PROTOCOL names the protocol and its version, so a peer of another version is told so instead of
  failing somewhere inside a decoder.
- The header is JSON: the coordinator never unpickles anything a peer sends. Job code travels as an
  opaque cloudpickle blob that only workers load, after the mac has been checked.
- mac is HMAC-SHA256 over everything after it, keyed with a per-run secret (`mapreduce run` shares
  one with its own worker processes), or empty when no secret is configured.

Every message goes out through `send` and comes in through `receive`: the one place a test can
lose chosen messages (`FILTERS`, empty in production).

Delivery guarantees. ZeroMQ loses messages when a connection breaks (whatever was queued on it) and
a send can find its queue full, so nothing relies on one message arriving:

- Peers have stable identities: workers and clients set `ROUTING_ID` on their DEALER (unique per
  process, the same on every reconnect), so a peer whose connection was cut comes back as itself.
  Each registration of a worker is a session with its own id (READY names it; reports and the
  RECONNECT answering a message carry it): a message of a session the worker has left, still on
  its way under the same routing id, is recognised and ignored.
- Results are delivered at least once. A worker keeps every DONE and FAIL (each names its job, task
  and attempt) until the coordinator answers ACK with the same three; it sends them again after one
  heartbeat interval without an ACK, whenever its connection is re-established, and first thing in
  a new session. The coordinator acknowledges every result, duplicates and late ones included, and
  acts on an attempt's result once (a repeat, or news of an attempt that no longer runs, is
  discarded).
- Assignments are delivered at least once. The coordinator numbers the TASKs it sends a worker
  (`seq`) and stamps every other message to it with the highest number sent so far (`assigned`).
  Each worker HEARTBEAT reports the attempts it runs (`running`), the results it holds unacknowledged
  (`finished`) and the highest number it has heard of (`known`). An attempt assigned to that worker
  that it does not list, whose number it has heard of, was lost on the way: it is sent again (the
  same attempt), and after a few losses in a row it is counted lost and runs elsewhere. An attempt a
  worker lists that the coordinator no longer runs there is cancelled on the worker.
- Client requests are retried: a request unanswered for a moment is sent again with the same
  `request` id, and a SUBMIT's id (chosen by the client, unique to it) makes it idempotent: the
  coordinator remembers which job each SUBMIT started and answers a repeat with that job.
- Exactly once: of all the attempts of a task, one is accepted and published, and a job's output
  is committed once (commit.py); duplicated messages never reach either twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import json.encoder
import platform
from dataclasses import dataclass, field
from typing import Callable

import cloudpickle
import zmq

from .errors import ProtocolError

_SNDMORE = int(zmq.SNDMORE)
# The frame send of pyzmq's compiled socket (zmq.backend, public): pyzmq's Python-level
# Socket.send adds only the DRAFT routing_id/group arguments, and a Python call per frame that
# cost as much as the send itself. Used for sockets of exactly zmq.Socket (subclasses, such as
# zmq.asyncio's, keep their own send).
_send_frame = zmq.backend.Socket.send

PROTOCOL = b"MRP/2"  # 2: results are acknowledged (ACK), workers report what they run

# Commands. Worker -> coordinator:
# READY: register / ask for work: {worker, host, pid, python, cloudpickle, capacity, session,
# heard}; `heard` is the highest TASK number its previous session heard of (0 for the first): the
# attempts it names are abandoned, a TASK sent after them may still reach the new session.
READY = b"R"
DONE = b"D"  # an attempt finished: {job, task, attempt, result}
FAIL = b"F"  # an attempt failed: {job, task, attempt, error, lost}
# A FAIL whose error has this type: every slot was busy when the TASK came; it never started.
NO_FREE_SLOT = "NoFreeSlot"
BYE = b"B"  # the worker is leaving cleanly: {}
# Coordinator -> worker:
TASK = b"T"  # run an attempt: {job, task, attempt, seq, kind, ...} + [job code blob]
CANCEL = b"C"  # abandon an attempt (another attempt won, or the job ended): {job, task, attempt}
REFUSE = b"X"  # registration refused, do not retry: {reason}
RECONNECT = b"Q"  # you are not registered (declared dead, or I restarted): {session}; send READY
# Both ways:
HEARTBEAT = b"H"  # worker: {session, running, finished, known}; coordinator: {}; any message counts
ACK = b"O"  # coordinator -> worker: a DONE or FAIL arrived: {job, task, attempt}
# Client -> coordinator (each answered by one reply carrying the request's "request" id; a request
# may be sent again with the same id when its reply is slow to come):
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
    ACK,
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


_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder, not one per message
# Its C encoder, made once: JSONEncoder.encode makes one (and a closure) at every call, which
# cost as much as encoding a small header. No circular-reference check: headers are trees.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # None without the C speedups
_C_ENCODER = (
    _make_c_encoder(
        None,
        _JSON.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
    if _make_c_encoder is not None
    else None
)


def json_bytes(value) -> bytes:
    """`value` as compact JSON (ASCII, UTF-8 bytes), as every header is written; the journal's
    records too."""
    if _C_ENCODER is None:  # a Python without the json module's C speedups
        return _JSON.encode(value).encode()
    return "".join(_C_ENCODER(value, 0)).encode()


def encode(message: Message, secret: bytes | None = None) -> list[bytes]:
    header = json_bytes(message.header)
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
    except (ValueError, RecursionError) as exc:
        # ValueError: not JSON, not UTF-8, or an integer of more digits than Python converts;
        # RecursionError: nested deeper than the parser goes. Either is the peer's mistake.
        raise ProtocolError(f"header is not JSON this side reads: {exc!s:.200}") from None
    if not isinstance(parsed, dict):
        raise ProtocolError("header is not a JSON object")
    return Message(command, parsed, list(blobs))


# ---- the wire: every message goes out through `send` and comes in through `receive` --------------

Filter = Callable[[str, Message], bool]
# Test hook: each filter is asked about every message this process sends ("out") or receives ("in")
# and returns False to lose it, as a broken connection would. Empty in production; tests start
# processes through a small launcher that appends to it before calling the normal entry point.
FILTERS: list[Filter] = []


def _passes(direction: str, message: Message) -> bool:
    return not FILTERS or all(keep(direction, message) for keep in FILTERS)


def send(
    sock, message: Message, secret: bytes | None = None, *, route: bytes | None = None, flags=0
) -> None:
    """Encode and send one message (a ROUTER names its peer in `route`); raises what the socket's
    send raises (zmq.Again when the queue is full and flags say not to wait). The frames go out
    one by one with plain int flags, as send_multipart would, without its per-frame checks and
    flag arithmetic (which cost as much as the send itself for these small frames), through
    pyzmq's compiled send when the socket is a plain zmq.Socket."""
    if not _passes("out", message):
        return
    frames = encode(message, secret)
    last = int(flags)
    more = last | _SNDMORE
    if type(sock) is zmq.Socket:
        if route is not None:
            _send_frame(sock, route, more)
        for frame in frames[:-1]:
            _send_frame(sock, frame, more)
        _send_frame(sock, frames[-1], last)
        return
    if route is not None:
        sock.send(route, more)
    for frame in frames[:-1]:
        sock.send(frame, more)
    sock.send(frames[-1], last)


def receive(frames: list[bytes], secret: bytes | None = None) -> Message | None:
    """Decode frames from a peer (ProtocolError when they are not a valid message); None when a
    test filter loses the message."""
    message = decode(frames, secret)
    return message if _passes("in", message) else None


def attempt_key(header: dict) -> dict:
    """The (job, task, attempt) that TASK, DONE, FAIL, CANCEL and ACK carry."""
    return {"job": header.get("job"), "task": header.get("task"), "attempt": header.get("attempt")}


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
