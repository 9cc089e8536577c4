"""The client's side of delivery, in one process: a request whose reply is lost is sent again with
the same id, and `submit` keeps following its job while the coordinator is silent (time faked)."""

from __future__ import annotations

import threading

import pytest
import zmq

from mapreduce import client as client_module
from mapreduce import protocol
from mapreduce.client import (
    CoordinatorClient,
    CoordinatorRefused,
    CoordinatorUnreachable,
    watch_patiently,
)


def test_a_request_whose_reply_is_lost_is_sent_again_with_the_same_id():
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.setsockopt(zmq.ROUTER_HANDOVER, 1)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    seen = []

    def coordinator():
        # The first copy is not answered (its reply "lost"); the copy sent again is.
        for copy in range(2):
            if not router.poll(10_000):
                return
            route, *frames = router.recv_multipart()
            message = protocol.decode(frames)
            seen.append((route, message.header["request"]))
            if copy == 1:
                reply = protocol.Message(protocol.STATUS_REPLY, {"request": seen[-1][1]})
                protocol.send(router, reply, route=route)

    thread = threading.Thread(target=coordinator)
    thread.start()
    try:
        # The stand-in coordinator has no keys: the client must not use this user's own.
        with CoordinatorClient(f"tcp://127.0.0.1:{port}", timeout=10, insecure=True) as client:
            client.status()
    finally:
        thread.join()
        router.close(0)
    (route1, id1), (route2, id2) = seen
    assert id1 == id2 and isinstance(id1, str)  # the same request, by its client-chosen id
    assert route1 == route2 and route1.startswith(b"c:")  # the same peer, on a fresh socket


class FakeTime:
    """Stands in for the `time` module inside mapreduce.client: sleeping advances the clock."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class SilentThen:
    """A client whose WATCH finds the coordinator silent `silent` times (each costing its
    timeout), then answers."""

    address = "tcp://coordinator:5555"

    def __init__(self, clock, silent, error=CoordinatorUnreachable):
        self.clock, self.silent, self.error, self.watched = clock, silent, error, []

    def watch(self, job_id):
        self.watched.append(job_id)
        if len(self.watched) <= self.silent:
            self.clock.now += 5.0
            raise self.error("no answer within 5 s.")
        return {"job": job_id, "status": "running"}


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(client_module, "time", fake)
    return fake


def test_submit_keeps_watching_the_same_job_while_the_coordinator_is_silent(clock):
    client = SilentThen(clock, silent=6)
    assert watch_patiently(client, "job-7")["status"] == "running"
    assert client.watched == ["job-7"] * 7
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]  # backoff, bounded


def test_a_coordinator_silent_too_long_ends_the_watch_with_one_clear_paragraph(clock):
    client = SilentThen(clock, silent=1000)
    with pytest.raises(CoordinatorUnreachable) as caught:
        watch_patiently(client, "job-7", patience=60)
    message = str(caught.value)
    assert "while following job job-7" in message and "not answered for" in message
    assert "mapreduce status --coordinator tcp://coordinator:5555" in message
    assert clock.now <= 60 + 5


def test_a_refused_handshake_is_an_answer_not_silence(clock):
    client = SilentThen(clock, silent=1, error=CoordinatorRefused)
    with pytest.raises(CoordinatorRefused):
        watch_patiently(client, "job-7")
    assert client.watched == ["job-7"]
