"""The coordinator's side of delivery, in one process: a Coordinator polled by the test, and raw
DEALER sockets speaking the protocol as a client or worker whose messages were repeated or lost."""

from __future__ import annotations

import time

import pytest
import zmq

from helpers import write_corpus
from mapreduce import protocol
from mapreduce.coordinator import Coordinator, JobSubmission
from mapreduce.scheduler import SchedulerSettings


@pytest.fixture
def coordinator(tmp_path):
    coordinator = Coordinator(
        "tcp://127.0.0.1:*",
        work_dir=str(tmp_path / "work"),
        settings=SchedulerSettings(heartbeat_interval=0.1, liveness=50),
    )
    try:
        yield coordinator
    finally:
        coordinator.close()


@pytest.fixture
def peers(coordinator):
    context = zmq.Context()
    sockets = []

    def connect(routing_id: bytes):
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
        sock.connect(coordinator.address)
        sockets.append(sock)
        return sock

    try:
        yield connect
    finally:
        for sock in sockets:
            sock.close(0)
        context.term()


def exchange(coordinator, sock, command, header, blobs=(), want=None) -> protocol.Message:
    """Send one message and poll the coordinator until a reply (of command `want`) comes."""
    protocol.send(sock, protocol.Message(command, header, list(blobs)))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        coordinator.poll(0.05)
        while sock.poll(0):
            reply = protocol.decode(sock.recv_multipart())
            if want is None or reply.command == want:
                return reply
    raise AssertionError(f"no {want!r} reply")


def submission(tmp_path, output) -> dict:
    [path] = write_corpus(tmp_path / "in", files=1, lines=5)
    job = JobSubmission(
        "test", b"", [{"index": 0, "segments": [[str(path), 0, 10]]}], [str(path)], 1, str(output)
    )
    header, _ = job.to_wire()
    return {"submission": {**header, "inputs": [str(path)]}, **protocol.runtime_versions()}


def test_a_submit_sent_again_starts_no_second_job(coordinator, peers, tmp_path):
    client = peers(b"c:test")
    header = {**submission(tmp_path, tmp_path / "out"), "request": "c:test-1"}
    first = exchange(coordinator, client, protocol.SUBMIT, header, [b""])
    again = exchange(coordinator, client, protocol.SUBMIT, header, [b""])
    assert first.command == again.command == protocol.ACCEPTED
    assert first.header["job"] == again.header["job"] and len(coordinator.jobs) == 1


def test_a_refused_submit_sent_again_is_refused_again(coordinator, peers, tmp_path):
    client = peers(b"c:test")
    out = tmp_path / "out"
    out.mkdir()
    (out / "taken").write_text("x")  # a non-empty output, and no --overwrite: refused
    header = {**submission(tmp_path, out), "request": "c:test-1"}
    first = exchange(coordinator, client, protocol.SUBMIT, header, [b""])
    assert first.command == protocol.REJECTED
    (out / "taken").unlink()  # the output is free now, but the copy is the same request
    again = exchange(coordinator, client, protocol.SUBMIT, header, [b""])
    assert again.header == first.header and not coordinator.jobs
    fresh = exchange(coordinator, client, protocol.SUBMIT, {**header, "request": "c:test-2"}, [b""])
    assert fresh.command == protocol.ACCEPTED


def test_a_late_result_from_an_unregistered_worker_is_acknowledged_and_discarded(
    coordinator, peers
):
    worker = peers(b"w:gone")
    key = {"job": "old", "task": "map-00000", "attempt": 1}
    reply = exchange(coordinator, worker, protocol.DONE, {**key, "result": {}})
    # Acknowledged (it stops sending it), not told to register: a worker sends such results
    # first in a new session, right before its READY.
    assert reply.command == protocol.ACK and protocol.attempt_key(reply.header) == key


def test_results_are_acknowledged_and_unknown_attempts_cancelled(coordinator, peers):
    worker = peers(b"w:one")
    ready = {"worker": "one", "host": "h", "pid": 1, "capacity": 1}
    exchange(
        coordinator,
        worker,
        protocol.READY,
        {**ready, **protocol.runtime_versions()},
        want=protocol.HEARTBEAT,
    )
    key = {"job": "old", "task": "map-00000", "attempt": 1}
    ack = exchange(coordinator, worker, protocol.FAIL, {**key, "error": {}, "lost": True})
    assert ack.command == protocol.ACK and protocol.attempt_key(ack.header) == key
    report = {"running": [["old", "map-00003", 2]], "finished": [], "known": 0}
    cancel = exchange(coordinator, worker, protocol.HEARTBEAT, report, want=protocol.CANCEL)
    assert protocol.attempt_key(cancel.header) == {"job": "old", "task": "map-00003", "attempt": 2}
    assert cancel.header["assigned"] == 0  # every message to a worker says what TASKs it sent


def test_a_report_of_an_earlier_session_is_ignored(coordinator, peers):
    worker = peers(b"w:two")
    ready = {"worker": "two", "host": "h", "pid": 2, "capacity": 1, "session": "s2"}
    ready.update(protocol.runtime_versions())
    exchange(coordinator, worker, protocol.READY, ready, want=protocol.HEARTBEAT)
    stale = {"session": "s1", "running": [["old", "map-00000", 1]], "finished": [], "known": 0}
    protocol.send(worker, protocol.Message(protocol.HEARTBEAT, stale))
    for _ in range(10):
        coordinator.poll(0.05)
    replies = []
    while worker.poll(0):
        replies.append(protocol.decode(worker.recv_multipart()).command)
    assert protocol.CANCEL not in replies  # the session it was about is over: nothing to cancel
    current = {**stale, "session": "s2"}
    cancel = exchange(coordinator, worker, protocol.HEARTBEAT, current, want=protocol.CANCEL)
    assert cancel.header["task"] == "map-00000"


def test_reconnect_names_the_session_it_answers(coordinator, peers):
    worker = peers(b"w:stranger")
    report = {"session": "s7", "running": [], "finished": [], "known": 0}
    reply = exchange(coordinator, worker, protocol.HEARTBEAT, report, want=protocol.RECONNECT)
    assert reply.header["session"] == "s7"


def test_a_flood_is_read_a_bounded_batch_per_iteration_and_every_request_answered(
    coordinator, peers, monkeypatch
):
    from mapreduce.coordinator import loop

    monkeypatch.setattr(loop, "MESSAGES_PER_ITERATION", 5)
    client = peers(b"c:flood")
    for n in range(12):
        protocol.send(client, protocol.Message(protocol.STATUS, {"request": f"r{n}"}))
    deadline = time.monotonic() + 10
    while not coordinator.socket.poll(0):
        assert time.monotonic() < deadline, "nothing came in"
        time.sleep(0.01)
    time.sleep(0.5)  # and the other eleven behind the first

    def answered() -> list:
        replies = []
        while client.poll(200):
            replies.append(protocol.decode(client.recv_multipart()).header["request"])
        return replies

    coordinator.poll(0.05)  # one iteration: five read, the rest wait for the next ones
    assert answered() == [f"r{n}" for n in range(5)]
    coordinator.poll(0.05)
    coordinator.poll(0.05)
    assert answered() == [f"r{n}" for n in range(5, 12)]  # none lost, in order


def test_a_coordinator_that_cannot_bind_leaves_no_thread_behind(coordinator, tmp_path):
    """Its address taken: the error is raised, and the committer's thread it had started is
    stopped (a service retrying, or a test, would otherwise collect them)."""
    import threading

    before = threading.active_count()
    with pytest.raises(zmq.ZMQError):
        Coordinator(coordinator.address, work_dir=str(tmp_path / "other"))
    assert threading.active_count() == before
