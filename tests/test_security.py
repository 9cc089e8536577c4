"""Issue: only authorised workers and clients may connect; garbage never crashes the coordinator."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
import zmq.auth
from zmq.utils import z85

from helpers import (
    ROOT,
    read_counts,
    run_cli,
    small_splits,
    wordcount_reference,
    write_corpus,
)
from mapreduce import protocol
from mapreduce.coordinator.submission import JobSubmission, check_allowed_paths, outside_prefixes
from mapreduce.errors import MapReduceError
from mapreduce.security import (
    ZAP_ENDPOINT,
    AllowList,
    RefusalLog,
    ZapHandler,
    default_keys_dir,
    is_local_address,
    may_send,
    secure_client,
)

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
    # A refused worker is told nothing by the coordinator: it logs why, and how to share keys.
    told = {worker.pid: log.read_text() for worker, log in zip(cluster.workers, cluster.logs[1:])}
    assert re.search(
        r"refused this worker's handshake: it uses CURVE keys and this worker has none "
        r"\(--insecure\)|broke off, which is what happens when it uses keys \(all do unless "
        r"started with --insecure\) and this worker has none",
        told[no_keys.pid],
    )
    assert (
        "refused this worker's handshake: this worker's key (" in told[unlisted.pid]
        and "`mapreduce keys authorize --role worker " in told[unlisted.pid]
    )
    for broken_off in (own_keys, wrong_server):
        assert "coordinator.key is not the public key of the coordinator" in told[broken_off.pid]


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
        f"handshake with the coordinator at {cluster.address} broke off, which is what happens "
        f"when {wrong_server}/coordinator.key "
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


# ---- secure by default: this user's own key set ---------------------------------------------


def test_the_default_key_set_is_made_once_private_even_by_processes_starting_together(tmp_path):
    config = tmp_path / "config"
    script = (
        "import sys; from mapreduce.security import default_keys_dir, ensure_keys; "
        "d = ensure_keys(default_keys_dir()); print(open(d + '/coordinator.key').read())"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(config)}
    racers = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = [racer.communicate(timeout=60)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * 6
    assert len(set(outputs)) == 1 and "public-key" in outputs[0]  # one set, seen by all
    keys = config / "mapreduce" / "keys"
    assert sorted(p.name for p in keys.parent.iterdir()) == ["keys"]  # no staging dir left
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for role in ("coordinator", "worker", "client"):
        assert stat.S_IMODE((keys / f"{role}.key_secret").stat().st_mode) == 0o600
    assert sorted(p.name for p in (keys / "authorized" / "workers").iterdir()) == ["worker.key"]
    assert sorted(p.name for p in (keys / "authorized" / "clients").iterdir()) == ["client.key"]


def test_another_users_key_set_is_refused_until_its_key_is_authorized(cluster, corpus, tmp_path):
    cluster.start_coordinator()  # no --keys: this user's own key set
    cluster.start_worker()
    cluster.wait_for_workers(1)
    mine = Path(default_keys_dir())
    other_user = {"XDG_CONFIG_HOME": str(tmp_path / "other-user")}
    refused = run_cli(
        "status", "--coordinator", cluster.address, "--timeout", "1.5", env=other_user, timeout=30
    )
    theirs = tmp_path / "other-user" / "mapreduce" / "keys"
    assert refused.returncode == 1
    assert (
        f"{theirs}/coordinator.key is not the public key of the coordinator at that address (it "
        f"was started by another user, or with another key set). To share a coordinator: copy "
        f"its coordinator.key into a key set of yours and have its operator allow your "
        f"client.key (`mapreduce keys authorize --role client FILE`)"
    ) in refused.stderr, refused.stderr
    # Sharing: the other user trusts this coordinator's public key, its operator allows theirs.
    shutil.copy(mine / "coordinator.key", theirs / "coordinator.key")
    allowed = run_cli("keys", "authorize", "--role", "client", theirs / "client.key")
    assert allowed.returncode == 0, allowed.stderr
    out = tmp_path / "out"
    result = cluster.submit(WORDCOUNT, [tmp_path / "corpus"], out, "-q", env=other_user)
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)


# ---- roles ------------------------------------------------------------------------------------


def role_swap(tmp_path, name, keys, *, use_as, pair_of):
    """A key directory whose `use_as` pair (worker or client) is really `pair_of`'s pair."""
    swapped = tmp_path / name
    swapped.mkdir()
    shutil.copy(keys / "coordinator.key", swapped / "coordinator.key")
    for suffix in (".key", ".key_secret"):
        shutil.copy(keys / f"{pair_of}{suffix}", swapped / f"{use_as}{suffix}")
    return swapped


def test_a_worker_key_cannot_submit_or_read_status_and_a_client_key_cannot_serve(
    cluster, keys, corpus, tmp_path
):
    good, _ = keys
    cluster.start_coordinator(None, "--keys", good)
    worker_as_client = role_swap(tmp_path, "w-as-c", good, use_as="client", pair_of="worker")
    client_as_worker = role_swap(tmp_path, "c-as-w", good, use_as="worker", pair_of="client")
    posing = cluster.start_worker(1, "--keys", client_as_worker)
    assert posing.wait(30) == 2  # refused for good: it does not retry
    assert "refused by the coordinator: the coordinator allows this key only as a client, not " in (
        cluster.logs[-1].read_text()
    )
    cluster.start_worker(1, "--keys", good)
    cluster.wait_for_workers(1, 30, "--keys", good)
    out = tmp_path / "out"
    for args in (
        ["status"],
        ["submit", WORDCOUNT, tmp_path / "corpus", "-o", out, *small_splits("2KB")],
    ):
        result = run_cli(
            *args, "--coordinator", cluster.address, "--keys", worker_as_client, timeout=60
        )
        assert result.returncode == 1
        assert result.stderr == (
            "mapreduce: error: the coordinator allows this key only as a worker, not as a "
            "client: a worker's key cannot submit, cancel or read status, and a client's key "
            "cannot serve as a worker. Use the client's key pair (client.key and "
            "client.key_secret of the key set), or allow this key as a client on the "
            "coordinator: `mapreduce keys authorize --role client PUBLIC_KEY_FILE`.\n"
        )
    assert not out.exists()
    assert [w["pid"] for w in cluster.status("--keys", good)["workers"]] != [posing.pid]
    log = cluster.logs[0].read_text()
    assert "refused a b'R' message from peer" in log and "refused a b'?' message from peer" in log


def test_a_key_directory_of_old_with_a_flat_allow_list_keeps_working_with_a_warning(keys, caplog):
    good, _ = keys
    authorized = good / "authorized"
    for role in ("worker", "client"):  # the layout earlier versions generated
        shutil.move(authorized / f"{role}s" / f"{role}.key", authorized / f"{role}.key")
        (authorized / f"{role}s").rmdir()
    allow_list = AllowList(str(good))
    with caplog.at_level(logging.WARNING, logger="mapreduce.security"):
        allow_list.reload_if_changed()
    assert "are accepted in both roles, as in earlier versions: move worker keys to" in caplog.text
    for role in ("worker", "client"):
        public, _ = zmq.auth.load_certificate(str(good / f"{role}.key"))
        assert allow_list.user_id(z85.decode(public)) == "client+worker"
        assert may_send("client+worker", protocol.SUBMIT) and may_send("client+worker", b"R")


def test_roles_allow_exactly_their_commands():
    assert all(may_send("worker", c) for c in (b"R", b"D", b"F", b"B", b"H"))
    assert not any(may_send("worker", c) for c in protocol.CLIENT_COMMANDS)
    assert all(may_send("client", c) for c in protocol.CLIENT_COMMANDS)
    assert not any(may_send("client", c) for c in (b"R", b"D", b"F", b"B", b"H"))
    assert not any(may_send("", c) for c in protocol.COMMANDS)  # no role: nothing
    assert not may_send("client", b"T") and not may_send("worker", b"A")  # ours to send
    assert all(may_send(None, c) for c in protocol.COMMANDS)  # no keys: no roles to tell apart


def test_the_zap_handler_answers_malformed_requests_with_a_logged_refusal(keys, caplog):
    """Asked over the real ZAP endpoint (RFC 27), as ZeroMQ asks it."""
    good, _ = keys
    allow_list = AllowList(str(good))
    allow_list.reload_if_changed()
    context = zmq.Context()
    handler = ZapHandler(context, allow_list, RefusalLog(interval=0))
    asker = context.socket(zmq.REQ)
    asker.setsockopt(zmq.LINGER, 0)
    asker.connect(ZAP_ENDPOINT)

    def ask(request):
        asker.send_multipart(request)
        assert asker.poll(5000), "no ZAP reply"
        return asker.recv_multipart()

    try:
        worker_public, _ = zmq.auth.load_certificate(str(good / "worker.key"))
        key = z85.decode(worker_public)
        base = [b"1.0", b"7", b"mapreduce", b"127.0.0.1", b""]
        assert ask([*base, b"CURVE", key]) == [b"1.0", b"7", b"200", b"OK", b"worker", b""]
        with caplog.at_level(logging.WARNING, logger="mapreduce.security"):
            for request in (
                [b"garbage"],
                [b"1.0", b"8"],
                [b"2.0", b"7", b"", b"", b"", b"CURVE", key],
                [*base, b"NULL"],
                [*base, b"PLAIN", b"user", b"password"],
                [*base, b"CURVE", key[:31]],
                [*base, b"CURVE", bytes(32)],
            ):
                reply = ask(request)
                assert len(reply) == 6 and reply[2] == b"400" and reply[4] == b""
        assert "refused a connection from 127.0.0.1: it uses the PLAIN mechanism" in caplog.text
        assert "refused a connection from 127.0.0.1: its public key is not in" in caplog.text
        assert ask([*base, b"CURVE", key])[2] == b"200"  # still serving
    finally:
        asker.close(0)
        handler.stop()
        context.term()


# ---- --allow-path -----------------------------------------------------------------------------


def test_allowed_prefixes_compare_whole_components_after_resolving_links(tmp_path):
    data = tmp_path / "data"
    (data / "in").mkdir(parents=True)
    (tmp_path / "data2").mkdir()
    (data / "escape").symlink_to(tmp_path / "data2")
    prefixes = [str(data), "s3://bucket/jobs"]
    assert not outside_prefixes(str(data), prefixes)
    assert not outside_prefixes(str(data / "in" / "x.txt"), prefixes)
    assert not outside_prefixes(f"file://{data}/in", prefixes)
    assert outside_prefixes(str(tmp_path / "data2" / "x"), prefixes)  # /data2 is not /data
    assert outside_prefixes(str(data / ".." / "data2"), prefixes)
    assert outside_prefixes(str(data / "escape" / "x"), prefixes)  # a symlink out of it
    assert not outside_prefixes("s3://bucket/jobs/out", prefixes)
    assert outside_prefixes("s3://bucket/jobs2/out", prefixes)
    assert outside_prefixes("s3://other/jobs/out", prefixes)
    assert outside_prefixes("gs://bucket/jobs/out", prefixes)
    assert outside_prefixes("s3://bucket/jobs/../secret", prefixes)


def _submission(inputs, output, splits):
    return JobSubmission(
        name="t",
        job_code=b"",
        splits=splits,
        split_descriptions=["d"] * len(splits),
        num_reducers=1,
        output_dir=output,
        inputs=inputs,
    )


def test_a_submission_reading_or_writing_outside_the_allowed_paths_is_refused(tmp_path):
    allowed = [str(tmp_path / "data")]
    inside, outside = str(tmp_path / "data" / "in.txt"), str(tmp_path / "secret.txt")
    check_allowed_paths(
        _submission([inside], str(tmp_path / "data" / "out"), [{"segments": [[inside, 0, 9]]}]),
        allowed,
    )
    check_allowed_paths(_submission([outside], "/anywhere", []), [])  # no prefixes: anywhere
    for submission, named in (
        (_submission([outside], str(tmp_path / "data" / "out"), []), f"input '{outside}'"),
        (_submission([inside], str(tmp_path / "out"), []), f"output '{tmp_path / 'out'}'"),
        (  # an allowed input, but splits that read another file
            _submission([inside], str(tmp_path / "data" / "o"), [{"segments": [[outside, 0, 1]]}]),
            f"input '{outside}'",
        ),
    ):
        with pytest.raises(MapReduceError) as refused:
            check_allowed_paths(submission, allowed)
        assert f"the job's {named} is outside the paths this coordinator allows" in str(
            refused.value
        )


def test_insecure_is_the_open_mode_of_old_said_out_loud_and_allow_path_applies_to_it(
    cluster, tmp_path
):
    data = tmp_path / "data"
    inputs = write_corpus(data / "corpus", files=2, lines=50)
    cluster.start_coordinator(None, "--insecure", "--allow-path", data)
    cluster.start_worker(1, "--insecure")
    cluster.wait_for_workers(1, 30, "--insecure")
    elsewhere = tmp_path / "elsewhere"
    refused = cluster.submit(WORDCOUNT, [data / "corpus"], elsewhere, "-q", "--insecure")
    assert refused.returncode == 1
    assert (
        f"the job's output '{elsewhere}' is outside the paths this coordinator allows jobs to "
        f"use ({data}; `mapreduce coordinator --allow-path`)"
    ) in refused.stderr
    assert not elsewhere.exists()
    out = data / "out"
    result = cluster.submit(WORDCOUNT, [data / "corpus"], out, "-q", "--insecure")
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(inputs)
    assert "client: WITHOUT keys (--insecure)" in result.stderr
    log = cluster.logs[0].read_text()
    assert "coordinator: WITHOUT keys (--insecure): every user of this machine can submit" in log
    assert "NO KEYS (--insecure" in log and f"jobs may use paths under {data} only" in log
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "mapreduce").exists()  # no keys made
