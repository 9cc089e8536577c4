"""The coordinator's socket loop under 500 workers: assignments + completions per second, and
heartbeats missed.

    python tests/benchmarks/coordinator_load.py                   # 500 workers, 20,000 maps
    python tests/benchmarks/coordinator_load.py --workers 100 --maps 2000   # a quick check

A real coordinator (`mapreduce coordinator`, its own process, with its journal) on 127.0.0.1, and
500 simulated workers: DEALER sockets, 125 to a process in 4 processes, each process serving its
sockets with one zmq.Poller. They speak the real protocol as mapreduce/worker/process.py does:
READY, a heartbeat report every interval (the attempts running, the results not yet
acknowledged, the highest TASK number heard of), DONE for every TASK at once (kept until ACKed),
but run no code: a map's result is an empty map output (no files, its shuffle_stats and counters),
a reduce's an empty part file in its output directory, which is what gets committed. The job (a
word count over a tiny file cut into --maps splits, --reduces reducers) is submitted through the
real client path (`mapreduce.client.submit_job`), which waits until it is committed.

Printed: assignments + completions per second (TASKs the workers received plus results the
coordinator acknowledged, over the span from the first TASK to the last ACK), and heartbeats
missed: workers the coordinator declared dead or told to register again (its log's "declared dead"
lines and the RECONNECTs the workers received): 0 is the only good answer. Target: >= 5,000/s.
Not collected by pytest; speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pstats
import re
import secrets
import shutil
import signal
import socket as pysocket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import zmq  # noqa: E402

from mapreduce import defaults, protocol, security  # noqa: E402
from mapreduce.protocol import Message  # noqa: E402

INTERVAL = defaults.HEARTBEAT_INTERVAL_S


class SimulatedWorker:
    """One worker's side of the protocol (mapreduce/worker/process.py), with no executors."""

    def __init__(self, context, address: str, name: str, keys_dir: str | None):
        self.id = name
        self.sock = context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, f"w:{name}".encode())
        if keys_dir:  # as a worker does: CURVE with the worker's key of the key set
            security.secure_client(self.sock, keys_dir, "worker")
        self.sock.connect(address)
        self.session = secrets.token_hex(4)
        self.known = 0
        self.unacked: dict = {}  # (job, task, attempt) -> [DONE header, sent at, wait]
        self.last_report = 0.0
        self.tasks = self.acks = self.reconnects = 0
        self.first_task = self.last_ack = None

    def send(self, command: bytes, header: dict) -> None:
        protocol.send(self.sock, Message(command, header), flags=zmq.NOBLOCK)

    def ready(self) -> None:
        header = {
            "worker": self.id,
            "host": pysocket.gethostname(),
            "pid": os.getpid(),
            "capacity": 1,
            "session": self.session,
            **protocol.runtime_versions(),
        }
        self.send(protocol.READY, header)

    def report(self, now: float) -> None:
        self.last_report = now
        self.send(
            protocol.HEARTBEAT,
            {
                "session": self.session,
                "running": [],
                "finished": [list(key) for key in self.unacked],
                "known": self.known,
            },
        )

    def drain(self, now: float) -> None:
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            message = protocol.receive(frames)
            if message is None:
                continue
            header = message.header
            for stamp in (header.get("seq"), header.get("assigned")):
                if type(stamp) is int and stamp > self.known:
                    self.known = stamp
            key = (header.get("job"), header.get("task"), header.get("attempt"))
            if message.command == protocol.TASK:
                self.tasks += 1
                self.first_task = self.first_task or now
                done = {**protocol.attempt_key(header), "result": result_of(header)}
                self.unacked[key] = [done, now, INTERVAL]
                self.send(protocol.DONE, done)
            elif message.command == protocol.ACK:
                if self.unacked.pop(key, None) is not None:
                    self.acks += 1
                    self.last_ack = now
            elif message.command == protocol.RECONNECT:
                self.reconnects += 1
                self.session = secrets.token_hex(4)
                self.ready()

    def resend(self, now: float) -> None:
        """A result not acknowledged within its wait goes again, the wait doubling (up to the
        liveness window), as Worker._resend_results does."""
        for pending in self.unacked.values():
            done, sent, wait = pending
            if now >= sent + wait:
                self.send(protocol.DONE, done)
                pending[1:] = [now, min(2 * wait, INTERVAL * defaults.HEARTBEAT_LIVENESS)]


def result_of(task: dict) -> dict:
    """What an attempt that did nothing reports: a map, an empty map output; a reduce, an empty
    part file (written, so that the commit has its part)."""
    if task.get("kind") == "map":
        return {
            "files": {},
            "shuffle_stats": {"records": {}, "bytes": {}, "heavy_keys": []},
            "counters": {"map_input_records": 0, "map_output_records": 0},
        }
    os.makedirs(task["out_dir"], exist_ok=True)
    open(os.path.join(task["out_dir"], f"part-{task['partition']:05d}"), "w").close()
    return {"files": {}, "counters": {"reduce_output_records": 0}}


def serve_workers(address: str, names: list, stop, results) -> None:
    """One process's simulated workers, served by one poller until `stop` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    context = zmq.Context()
    # The key set a worker started with no --keys uses (this user's own), as the coordinator.
    keys_dir = security.keys_for(None, False, [address], "worker")
    workers = [SimulatedWorker(context, address, name, keys_dir) for name in names]
    poller = zmq.Poller()
    by_socket = {}
    for worker in workers:
        poller.register(worker.sock, zmq.POLLIN)
        by_socket[worker.sock] = worker
        worker.ready()
    while not stop.is_set():
        events = poller.poll(int(INTERVAL * 100))
        now = time.monotonic()
        for sock, _ in events:
            by_socket[sock].drain(now)
        for worker in workers:
            worker.resend(now)
            if now - worker.last_report >= INTERVAL:
                worker.report(now)
    results.put(
        {
            "tasks": sum(w.tasks for w in workers),
            "acks": sum(w.acks for w in workers),
            "reconnects": sum(w.reconnects for w in workers),
            "cpu": time.process_time(),
            "first_task": min((w.first_task for w in workers if w.first_task), default=None),
            "last_ack": max((w.last_ack for w in workers if w.last_ack), default=None),
        }
    )
    for worker in workers:
        worker.sock.close(0)
    context.term()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_coordinator(tmp: Path, profile: bool) -> tuple[subprocess.Popen, str, Path]:
    log = tmp / "coordinator.log"
    profiler = ["-m", "cProfile", "-o", str(tmp / "coordinator.prof")] if profile else []
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, *profiler, "-m", "mapreduce.cli", "--log-file", str(log)]
            + ["coordinator"]
            + ["--bind", "tcp://127.0.0.1:*", "--work-dir", str(tmp / "work")],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"listening on (tcp://\S+);", log.read_text())
        if match:
            return process, match.group(1), log
        if process.poll() is not None:
            raise SystemExit(log.read_text())
        time.sleep(0.05)
    raise SystemExit("the coordinator did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--processes", type=int, default=4, help="processes of workers")
    parser.add_argument("--maps", type=int, default=20_000)
    parser.add_argument("--reduces", type=int, default=4)
    parser.add_argument("--profile", type=int, default=0, help="the coordinator's cProfile top N")
    args = parser.parse_args()

    from mapreduce.client import submit_job

    tmp = Path(tempfile.mkdtemp(prefix="coordinator-load-"))
    coordinator = None
    processes: list = []
    stop = multiprocessing.Event()
    results: multiprocessing.Queue = multiprocessing.Queue()
    try:
        # The input: one line per split, each split 64 bytes.
        data = tmp / "input.txt"
        data.write_text("".join(f"{i:063d}\n" for i in range(args.maps)))
        coordinator, address, log = start_coordinator(tmp, bool(args.profile))
        names = [f"sim-{i:04d}" for i in range(args.workers)]
        for n in range(args.processes):
            process = multiprocessing.Process(
                target=serve_workers, args=(address, names[n :: args.processes], stop, results)
            )
            process.start()
            processes.append(process)
        time.sleep(2 * INTERVAL)  # every worker registered
        started, cpu = time.monotonic(), cpu_seconds(coordinator.pid)
        state = submit_job(
            str(ROOT / "jobs" / "wordcount.py"),
            [str(data)],
            str(tmp / "out"),
            address,
            reducers=args.reduces,
            split_size=64,
            min_split_size=1,
            quiet=True,
        )
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(coordinator.pid) - cpu
        stop.set()
        totals = [results.get(timeout=30) for _ in processes]
        tasks = sum(t["tasks"] for t in totals)
        acks = sum(t["acks"] for t in totals)
        reconnects = sum(t["reconnects"] for t in totals)
        first = min(t["first_task"] for t in totals if t["first_task"])
        last = max(t["last_ack"] for t in totals if t["last_ack"])
        text = log.read_text()
        dead = len(re.findall(r"declared dead", text))
        progress = state.get("progress") or {}
        print(
            f"coordinator loop: {args.workers} simulated workers in {args.processes} processes; "
            f"job of {progress.get('maps')} maps + {progress.get('reduces')} reduces "
            f"{state.get('status')} in {elapsed:.1f} s (submit to commit)"
        )
        print(
            f"  {tasks:,} assignments + {acks:,} completions in {last - first:.1f} s: "
            f"{(tasks + acks) / (last - first):,.0f} per second (target >= 5,000); the "
            f"coordinator used {cpu:.1f} s of CPU (all threads) from submit to commit: "
            f"{(tasks + acks) / cpu:,.0f} per CPU second"
        )
        print(
            f"  the {args.processes} processes of simulated workers used "
            f"{sum(t['cpu'] for t in totals):.1f} s of CPU in all, on {os.cpu_count()} cores"
        )
        print(
            f"  heartbeats missed: {dead} workers declared dead, {reconnects} told to register "
            f"again (must be 0); {len(text.splitlines())} coordinator log lines"
        )
        if args.profile:
            stop_coordinator(coordinator)
            coordinator = None
            stats = pstats.Stats(str(tmp / "coordinator.prof"))
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)
    finally:
        stop.set()
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
        if coordinator is not None:
            stop_coordinator(coordinator)
        shutil.rmtree(tmp, ignore_errors=True)


def stop_coordinator(coordinator: subprocess.Popen) -> None:
    """SIGTERM (it stops cleanly, and a profile is written), SIGKILL if it lingers."""
    os.killpg(coordinator.pid, signal.SIGTERM)
    try:
        coordinator.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(coordinator.pid, signal.SIGKILL)
        coordinator.wait()


if __name__ == "__main__":
    main()
