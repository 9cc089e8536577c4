"""protocol.send over real sockets: the frames a peer receives decode to the message sent, through
pyzmq's compiled send for a plain zmq.Socket and through a subclass's own send otherwise."""

from __future__ import annotations

import zmq

from mapreduce import protocol


class CountingSocket(zmq.Socket):
    """A socket subclass (as zmq.asyncio's are) whose own send must be the one used."""

    sent = 0

    def send(self, data, flags=0, copy=True, track=False, **kwargs):
        CountingSocket.sent += 1
        return super().send(data, flags, copy=copy, track=track, **kwargs)


def pair(context: zmq.Context, router_class=zmq.Socket):
    router = router_class(context, zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.ROUTING_ID, b"w:peer")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    return router, dealer


def test_a_message_sent_through_a_route_arrives_whole_and_authenticated():
    context = zmq.Context()
    router, dealer = pair(context)
    try:
        secret = b"s" * 32
        hello = protocol.Message(protocol.READY, {"worker": "peer", "capacity": 2})
        protocol.send(dealer, hello, secret)
        assert router.poll(5000)
        route, *frames = router.recv_multipart()
        assert route == b"w:peer" and protocol.receive(frames, secret) == hello
        task = protocol.Message(protocol.TASK, {"job": "j", "task": "m1", "attempt": 1}, [b"code"])
        protocol.send(router, task, secret, route=route, flags=zmq.NOBLOCK)
        assert dealer.poll(5000)
        assert protocol.receive(dealer.recv_multipart(), secret) == task
    finally:
        router.close(0)
        dealer.close(0)
        context.term()


def test_a_socket_subclass_sends_through_its_own_send():
    context = zmq.Context()
    router, dealer = pair(context, CountingSocket)
    try:
        protocol.send(dealer, protocol.Message(protocol.HEARTBEAT, {}))
        assert router.poll(5000)
        route, *_ = router.recv_multipart()
        CountingSocket.sent = 0
        ack = protocol.Message(protocol.ACK, {"job": "j", "task": "m1", "attempt": 1})
        protocol.send(router, ack, route=route)
        assert CountingSocket.sent == 1 + len(protocol.encode(ack))  # the route and each frame
        assert dealer.poll(5000)
        assert protocol.receive(dealer.recv_multipart()) == ack
    finally:
        router.close(0)
        dealer.close(0)
        context.term()


def test_json_bytes_is_compact_json_as_the_json_module_writes_it():
    import json

    import pytest

    values = [
        {"job": "j-1", "task": "map-00001", "attempt": 3, "assigned": 12},
        {"nested": {"files": {"0": ["/a b/é.arrow"]}, "n": [1, 2.5, -0.0, 1e300, None, True]}},
        {"quote": 'a"b\\c\n\u2028', 1: "int key", "float": float("inf")},
        ["a list", {"empty": {}}],
        "a str",
        12345678901234567890,
    ]
    for value in values:
        assert protocol.json_bytes(value) == json.dumps(value, separators=(",", ":")).encode()
        assert json.loads(protocol.json_bytes(value)) == json.loads(json.dumps(value))
    with pytest.raises(TypeError):
        protocol.json_bytes({"not JSON": object()})
