"""Issue: only authorised workers and clients may connect; garbage never crashes the coordinator."""

from __future__ import annotations

import re
import shutil
import socket
import time

import pytest
import zmq

from helpers import ROOT, read_counts, run_cli, small_splits, wordcount_reference
from mapreduce import protocol
from mapreduce.security import default_keys_dir, is_local_address, secure_client

WORDCOUNT = ROOT / "jobs" / "wordcount.py"


@pytest.fixture
def keys(tmp_path):
    good, other = tmp_path / "keys", tmp_path / "other-keys"
    for directory in (good, other):
        result = run_cli("keys", "generate", directory)
        assert result.returncode == 0, result.stderr
    return good, other


def key_mix(tmp_path, name, *, pair_from, coordinator_from):
    """A key directory whose own pair and coordinator key come from possibly different sets."""
    mixed = tmp_path / name
    mixed.mkdir()
    for suffix in ("worker.key", "worker.key_secret", "client.key", "client.key_secret"):
        shutil.copy(pair_from / suffix, mixed / suffix)
    shutil.copy(coordinator_from / "coordinator.key", mixed / "coordinator.key")
    return mixed


def test_only_workers_with_allowed_keys_get_tasks(cluster, keys, corpus, tmp_path):
    good, other = keys
    cluster.start_coordinator(None, "--keys", good)
    authorised = cluster.start_worker(1, "--keys", good)
    no_keys = cluster.start_worker(1, "--insecure")
    own_keys = cluster.start_worker(1)  # this user's own key set: another coordinator key
    unlisted = cluster.start_worker(
        1, "--keys", key_mix(tmp_path, "unlisted", pair_from=other, coordinator_from=good)
    )
    wrong_server = cluster.start_worker(
        1, "--keys", key_mix(tmp_path, "wrong-server", pair_from=good, coordinator_from=other)
    )
    cluster.wait_for_workers(1, 30, "--keys", good)
    time.sleep(1.0)  # give the intruders time to try
    out = tmp_path / "out"
    result = cluster.submit(
        WORDCOUNT, [tmp_path / "corpus"], out, "--keys", good, *small_splits("2KB")
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    workers = cluster.status("--keys", good)["workers"]
    assert [w["pid"] for w in workers] == [authorised.pid]
    for intruder in (no_keys, own_keys, unlisted, wrong_server):
        assert intruder.poll() is None  # still trying, never served
    coordinator_log = cluster.logs[0].read_text()
    assert "refused a connection from 127.0.0.1" in coordinator_log


def test_a_client_the_coordinator_refuses_is_told_why_and_the_coordinator_logs_it(
    cluster, keys, corpus, tmp_path
):
    good, other = keys
    cluster.start_coordinator(None, "--keys", good)
    cluster.start_worker(1, "--keys", good)
    stranger = key_mix(tmp_path, "stranger", pair_from=other, coordinator_from=good)
    refusals = {
        ("--insecure",): "refused this client's handshake: it uses CURVE keys and this client "
        "has none (--insecure). A coordinator using keys silently drops clients without the "
        "right key; leave out --insecure to use your own key set",
        ("--keys", stranger): f"refused this client's handshake: this client's key "
        f"({stranger}/client.key) is not among the keys it allows (it was started by another "
        f"user, or with another key set). Its operator can allow this key: `mapreduce keys "
        f"authorize --role client {stranger}/client.key`",
    }
    for args in (
        ["status", "--coordinator", cluster.address],
        ["submit", WORDCOUNT, *corpus, "--coordinator", cluster.address, "-o", tmp_path / "o"],
    ):
        for extra, message in refusals.items():
            started = time.monotonic()
            result = run_cli(*args, *extra, "--timeout", "30", timeout=60)
            assert result.returncode == 1
            error = result.stderr[result.stderr.find("mapreduce: error: ") :]
            assert error.startswith(f"mapreduce: error: the coordinator at {cluster.address} ")
            assert message in result.stderr, result.stderr
            assert time.monotonic() - started < 15  # told at once, not after the timeout
    assert not (tmp_path / "o").exists()
    log = cluster.logs[0].read_text()
    # A key refused by the allow-list (ZAP) is logged with the peer's address, once a minute at
    # most (two clients were refused); a client with no keys is refused by ZeroMQ before ZAP, and
    # its address is logged when it could still be read from the connection.
    assert log.count("refused a connection from 127.0.0.1: its public key is not in ") == 1, log
    assert re.search(
        r"refused a connection from (127\.0\.0\.1:\d+|an unknown address \(it closed at "
        r"once\)): (it has no CURVE keys|it broke off the handshake)",
        log,
    ), log


def test_a_client_with_another_coordinators_key_times_out_with_the_likely_cause(
    cluster, keys, tmp_path
):
    good, other = keys
    cluster.start_coordinator(None, "--keys", good)
    wrong_server = key_mix(tmp_path, "wrong-server", pair_from=good, coordinator_from=other)
    result = run_cli(
        "status",
        "--coordinator",
        cluster.address,
        "--keys",
        wrong_server,
        "--timeout",
        "1.5",
        timeout=30,
    )
    assert result.returncode == 1
    assert (
        f"no answer from a coordinator at {cluster.address} within 1.5 s. Every encrypted "
        f"handshake with it broke off, which is what happens when {wrong_server}/coordinator.key "
        f"is not the public key of the coordinator at that address"
    ) in result.stderr, result.stderr
    assert re.search(
        r"refused a connection from (127\.0\.0\.1:\d+|an unknown address \(it closed at "
        r"once\)): (its handshake did not decrypt|it broke off the handshake)",
        cluster.logs[0].read_text(),
    )


def test_no_answer_says_that_a_coordinator_with_keys_drops_clients_without_them():
    with socket.socket() as probe:  # a free port, with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    head = (
        f"mapreduce: error: no answer from a coordinator at {address} within 0.5 s. Is "
        f"`mapreduce coordinator --bind ...` running there, and is the address right? "
    )
    result = run_cli("status", "--coordinator", address, "--timeout", "0.5", timeout=30)
    assert result.returncode == 1
    assert result.stderr == (
        f"{head}Does it accept this client's key (its KEYS/authorized/clients/ must hold "
        f"{default_keys_dir()}/client.key)?\n"
    )
    result = run_cli(
        "status", "--coordinator", address, "--timeout", "0.5", "--insecure", timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"{head}A coordinator that uses keys (all do unless started with --insecure) silently "
        f"drops a client without the right key: leave out --insecure, or pass --keys KEYS, the "
        f"directory from `mapreduce keys generate`.\n"
    )


def test_garbage_and_oversized_frames_leave_the_coordinator_serving(cluster, corpus, tmp_path):
    cluster.start_coordinator()
    cluster.start_worker()
    cluster.wait_for_workers(1)
    context = zmq.Context()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    secure_client(raw, default_keys_dir(), "client")  # an allowed peer: its garbage gets in
    try:
        raw.connect(cluster.address)
        for frames in (
            [b"garbage"],
            [protocol.PROTOCOL, b"D", b"", b"{not json"],
            [protocol.PROTOCOL, b"R", b"", b"[1,2]"],
            [protocol.PROTOCOL, b"D", b"", b'{"job": "x", "task": "map-00000", "attempt": 1}'],
            [protocol.PROTOCOL, b"S", b"", b'{"submission": {"name": 3}}', b"\x80junk"],
            [b"MRP/9", b"R", b"", b"{}"],
            [b"x" * (300 * 1024 * 1024)],
        ):
            raw.send_multipart(frames)
        time.sleep(0.5)
    finally:
        raw.close(0)
        context.term()
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=5) as plain:
        plain.sendall(b"\x00\xffGET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 64)
    time.sleep(0.3)
    assert cluster.coordinator.poll() is None
    out = tmp_path / "out"
    result = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], out, "-q")
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)


@pytest.mark.parametrize("command", ["coordinator", "worker", "status"])
def test_non_loopback_address_without_keys_is_refused(command, tmp_path):
    address = "tcp://0.0.0.0:5999" if command == "coordinator" else "tcp://192.0.2.1:5999"
    option = {"coordinator": "--bind", "worker": "--connect", "status": "--coordinator"}[command]
    result = run_cli(command, option, address, timeout=30)
    assert result.returncode != 0
    assert "without keys" in result.stderr and "mapreduce keys generate" in result.stderr


def test_loopback_and_ipc_count_as_local():
    assert is_local_address("tcp://127.0.0.1:5555") and is_local_address("tcp://localhost:1")
    assert is_local_address("tcp://[::1]:5555") and is_local_address("ipc:///tmp/x")
    assert not is_local_address("tcp://0.0.0.0:5555") and not is_local_address("tcp://10.1.2.3:5")
    assert not is_local_address("tcp://example.com:5555")


def test_keys_are_never_overwritten(tmp_path):
    assert run_cli("keys", "generate", tmp_path / "k").returncode == 0
    before = (tmp_path / "k" / "coordinator.key_secret").read_bytes()
    result = run_cli("keys", "generate", tmp_path / "k")
    assert result.returncode != 0 and "never overwritten" in result.stderr
    assert (tmp_path / "k" / "coordinator.key_secret").read_bytes() == before


def test_malformed_reports_from_a_registered_worker_are_dropped(cluster, corpus, tmp_path):
    import json as jsonlib

    from mapreduce import protocol

    cluster.start_coordinator()
    context = zmq.Context()
    fake = context.socket(zmq.DEALER)
    fake.setsockopt(zmq.LINGER, 0)
    secure_client(fake, default_keys_dir(), "worker")
    try:
        fake.connect(cluster.address)
        fake.send_multipart(
            protocol.encode(
                protocol.Message(
                    protocol.READY,
                    {"worker": "fake", "capacity": "lots", **protocol.runtime_versions()},
                )
            )
        )
        fake.send_multipart(
            protocol.encode(
                protocol.Message(
                    protocol.READY, {"worker": "fake", "capacity": 1, **protocol.runtime_versions()}
                )
            )
        )
        for header in (
            {"job": 1, "task": [], "attempt": "x"},
            {
                "job": "j",
                "task": "map-00000",
                "attempt": 1,
                "result": {"files": {"0": "not-a-list"}},
            },
            {"job": "j", "task": 5, "attempt": 1},
            {"job": "j", "task": "map-x", "attempt": 1, "error": "text"},
        ):
            for command in (protocol.DONE, protocol.FAIL):
                fake.send_multipart(
                    [protocol.PROTOCOL, command, b"", jsonlib.dumps(header).encode()]
                )
        time.sleep(0.5)
    finally:
        fake.close(0)
        context.term()
    assert cluster.coordinator.poll() is None
    cluster.start_worker()
    out = tmp_path / "out"
    result = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], out, "-q")
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)


def test_keys_added_to_or_removed_from_the_allow_list_apply_without_a_restart(
    cluster, keys, tmp_path
):
    good, other = keys
    cluster.start_coordinator(None, "--keys", good)
    newcomer = key_mix(tmp_path, "newcomer", pair_from=other, coordinator_from=good)
    worker = cluster.start_worker(1, "--keys", newcomer)
    time.sleep(1.0)
    assert cluster.status("--keys", good)["workers"] == []  # not allowed yet
    shutil.copy(other / "worker.key", tmp_path / "newcomer-worker.key")
    shutil.copy(other / "client.key", tmp_path / "newcomer-client.key")
    for role in ("worker", "client"):
        added = run_cli(
            "keys", "authorize", "--keys", good, "--role", role, tmp_path / f"newcomer-{role}.key"
        )
        assert added.returncode == 0, added.stderr
        assert added.stdout == f"{good}/authorized/{role}s/newcomer-{role}.key\n"
    status = cluster.wait_for_workers(1, 30, "--keys", good)  # it retries and is let in
    assert [w["pid"] for w in status["workers"]] == [worker.pid]
    allowed = run_cli(
        "status", "--coordinator", cluster.address, "--keys", newcomer, "--timeout", "3", timeout=30
    )
    assert allowed.returncode == 0, allowed.stderr
    (good / "authorized" / "clients" / "newcomer-client.key").unlink()  # revoked from now on
    refused = run_cli(
        "status",
        "--coordinator",
        cluster.address,
        "--keys",
        newcomer,
        "--timeout",
        "1.5",
        timeout=30,
    )
    assert refused.returncode != 0 and "is not among the keys it allows" in refused.stderr
    assert "allowed keys in" in cluster.logs[0].read_text()
