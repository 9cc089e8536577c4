"""Issue 15: a bounded fuzz of the wire decoder and of a live coordinator.

The decoder must turn anything a peer sends (random frames, truncated or huge ones, deep or huge
JSON headers, unknown commands, well-formed messages with fields of the wrong types) into a
`ProtocolError` or a message, never another exception. A live coordinator fed such messages by
peers without keys, with a key it does not allow, and with allowed worker and client keys keeps
serving a real job, and never unpickles anything it is sent.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import random
import shutil
import time

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import (
    ROOT,
    finish_cli,
    read_counts,
    run_cli,
    small_splits,
    start_cli,
    wordcount_reference,
)
from mapreduce import protocol
from mapreduce.coordinator.submission import JobSubmission
from mapreduce.errors import ProtocolError
from mapreduce.security import default_keys_dir, secure_client

WORDCOUNT = ROOT / "jobs" / "wordcount.py"
FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
COMMANDS = sorted(protocol.COMMANDS) + [b"Z", b"", b"RR", b"\x00"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def decodes_or_refuses(frames: list, secret: bytes | None = None):
    """The decoder's only two answers: a message with a dict header, or ProtocolError."""
    try:
        message = protocol.decode(frames, secret)
    except ProtocolError:
        return None
    assert isinstance(message.header, dict) and message.command in protocol.COMMANDS
    return message


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_frames_decode_or_are_refused(frames):
    decodes_or_refuses(frames)
    decodes_or_refuses([protocol.PROTOCOL, *frames])
    decodes_or_refuses([protocol.PROTOCOL, *frames], secret=b"s" * 32)


@FUZZ
@given(st.sampled_from(COMMANDS), JSON, st.lists(st.binary(max_size=32), max_size=3))
def test_any_json_header_under_any_command_decodes_or_is_refused(command, header, blobs):
    message = decodes_or_refuses(
        [protocol.PROTOCOL, command, b"", json.dumps(header).encode(), *blobs]
    )
    if message is not None:
        assert message.header == header and message.blobs == blobs
    else:
        assert command not in protocol.COMMANDS or not isinstance(header, dict)


@FUZZ
@given(st.data())
def test_truncated_or_tampered_messages_are_refused_with_a_secret(data):
    secret = b"k" * 32
    header = data.draw(st.dictionaries(st.text(max_size=8), JSON, max_size=4))
    frames = protocol.encode(protocol.Message(protocol.DONE, header, [b"blob"]), secret)
    assert decodes_or_refuses(frames, secret).header == header
    index = data.draw(st.integers(0, len(frames) - 1))
    cut = data.draw(st.integers(0, max(0, len(frames[index]) - 1)))
    truncated = [*frames[:index], frames[index][:cut], *frames[index + 1 :]]
    assert decodes_or_refuses(truncated, secret) is None
    assert decodes_or_refuses(frames[: data.draw(st.integers(0, len(frames) - 1))], secret) is None


@pytest.mark.parametrize(
    "header",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than Python's parser goes
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"known": ' + b"9" * 5000 + b"}",  # more digits than Python converts
        b'{"a": "' + b"x" * (8 << 20) + b'"}',  # huge, and valid
        b"\xff\xfe{}",
        b"",
    ],
)
def test_deep_huge_and_odd_headers_decode_or_are_refused(header):
    decodes_or_refuses([protocol.PROTOCOL, protocol.HEARTBEAT, b"", header])


SUBMISSION_FIELDS = [
    "name", "splits", "split_descriptions", "num_reducers", "output_dir", "overwrite",
    "max_attempts", "max_losses", "output_format", "skip_bad_records", "max_skipped",
    "skipped_earlier", "inputs", "split_by", "unknown",
]  # fmt: skip


@settings(FUZZ, max_examples=50)
@given(st.dictionaries(st.sampled_from(SUBMISSION_FIELDS), JSON, max_size=15))
def test_submissions_with_fields_of_any_type_parse_or_are_refused(header):
    try:
        submission = JobSubmission.from_wire(header, b"code")
    except ProtocolError:
        return
    assert isinstance(submission.name, str) and isinstance(submission.num_reducers, int)
    submission.read_paths()  # what --allow-path checks copes with whatever splits hold
    submission.input_paths()


# ---- a live coordinator ------------------------------------------------------------------------


class _Touch:
    """Unpickling this creates `path`: the proof that something was unpickled."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def hostile_messages(rng: random.Random, payload: bytes) -> list:
    """Frames a hostile or broken peer might send: random bytes, unknown commands, deep and huge
    headers, fields of the wrong types for every command, and pickles where blobs go."""
    versions = protocol.runtime_versions()
    messages = [
        [rng.randbytes(rng.randint(0, 40)) for _ in range(rng.randint(1, 6))] for _ in range(60)
    ]
    messages += [[protocol.PROTOCOL, rng.randbytes(1), b"", b"{}", payload] for _ in range(20)]
    wrong = [None, 3, -1, 1e308, "x", [], {}, [[[]]], {"a": {"b": []}}, True, "\x00" * 50]
    for command in COMMANDS:
        for _ in range(6):
            header = {
                key: rng.choice(wrong)
                for key in (
                    "job",
                    "task",
                    "attempt",
                    "session",
                    "running",
                    "finished",
                    "known",
                    "result",
                    "error",
                    "lost",
                    "worker",
                    "capacity",
                    "request",
                    "submission",
                )  # fmt: skip
            }
            header.update(python="0.0")  # a READY never registers, a SUBMIT is never run
            messages.append([protocol.PROTOCOL, command, b"", json.dumps(header).encode(), payload])
    submission = {"name": 3, "splits": "all", "output_dir": ["/"], "num_reducers": "many"}
    messages += [
        [protocol.PROTOCOL, protocol.SUBMIT, b"", json.dumps({"submission": submission, **versions}).encode(), payload],
        [protocol.PROTOCOL, protocol.SUBMIT, b"", json.dumps({"submission": {}, "python": "0.0"}).encode(), payload],
        [protocol.PROTOCOL, protocol.READY, b"", json.dumps({"capacity": "lots", **versions}).encode(), payload],
        [protocol.PROTOCOL, protocol.HEARTBEAT, b"", b"[" * 100_000 + b"]" * 100_000],
        [protocol.PROTOCOL, protocol.DONE, b"", b'{"known": ' + b"9" * 5000 + b"}"],
        [protocol.PROTOCOL, protocol.STATUS, b"", b'{"request": "' + b"r" * (4 << 20) + b'"}'],
        [protocol.PROTOCOL, protocol.DONE, b"not a mac", b"{}", payload],
        [b"MRP/1", protocol.READY, b"", b"{}"],
        [pickle.dumps({"header": _Touch("x")})],
    ]  # fmt: skip
    return messages


def test_a_live_coordinator_keeps_serving_a_job_through_hostile_peers_and_unpickles_nothing(
    cluster, corpus, keys_pair, tmp_path
):
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Touch(marker))
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Touch(control)))  # the payload would leave its file if loaded
    assert control.exists()
    cluster.start_coordinator()  # this user's own key set
    cluster.start_worker(2)
    cluster.wait_for_workers(1)
    keys = default_keys_dir()
    # A stranger who knows this coordinator's public key, with a key it does not allow.
    shutil.copy(f"{keys}/coordinator.key", keys_pair / "coordinator.key")
    out = tmp_path / "out"
    job = start_cli(
        ["submit", WORDCOUNT, tmp_path / "corpus", "--coordinator", cluster.address, "-o", out,
         "-q", *small_splits("2KB")]
    )  # fmt: skip
    context = zmq.Context()
    peers = []
    try:
        for keys_dir, role in (
            (None, None),
            (keys_pair, "client"),
            (keys, "client"),
            (keys, "worker"),
        ):
            peer = context.socket(zmq.DEALER)
            peer.setsockopt(zmq.LINGER, 0)
            if keys_dir is not None:
                secure_client(peer, str(keys_dir), role)
            peer.connect(cluster.address)
            peers.append(peer)
        rng = random.Random(15)
        messages = hostile_messages(rng, payload)
        for peer in peers:
            for frames in messages:
                try:
                    peer.send_multipart(frames, zmq.NOBLOCK)
                except zmq.Again:  # an unauthenticated peer's queue fills: it never connects
                    break
        time.sleep(1.0)
        result = finish_cli(job, timeout=120)
    finally:
        for peer in peers:
            peer.close(0)
        context.term()
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    assert cluster.coordinator.poll() is None
    again = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], tmp_path / "again", "-q")
    assert again.returncode == 0, again.stderr
    assert read_counts(tmp_path / "again") == wordcount_reference(corpus)
    assert not marker.exists()  # nobody unpickled what the peers sent
    log = cluster.logs[0].read_text()
    assert "dropped a message from peer" in log  # garbage from allowed keys reached the loop
    assert "refused a b'S' message from peer" in log  # a worker key's SUBMIT: its role
    assert "refused a connection from" in log  # the peers without an allowed key
    status = run_cli("status", "--coordinator", cluster.address, "--json", timeout=30)
    assert len(json.loads(status.stdout)["workers"]) == 1  # no hostile READY registered


@pytest.fixture
def keys_pair(tmp_path):
    """A key set the coordinator does not know."""
    result = run_cli("keys", "generate", tmp_path / "stranger-keys")
    assert result.returncode == 0, result.stderr
    return tmp_path / "stranger-keys"
