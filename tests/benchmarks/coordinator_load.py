"""The coordinator's socket loop under 500 workers: assignments + completions per second, and
heartbeats missed.

    python tests/benchmarks/coordinator_load.py                   # 500 workers, 20,000 maps
    python tests/benchmarks/coordinator_load.py --workers 100 --maps 2000   # a quick check

A real coordinator (`mapreduce coordinator`, its own process, with its journal) on 127.0.0.1, and
500 simulated workers: DEALER sockets, 125 to a process in 4 processes, each process serving its
sockets with one zmq.Poller (pausing a few ms between polls, so that each finds many sockets
ready). They speak the real protocol as mapreduce/worker/process.py does:
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
Also printed: the coordinator's CPU from submit to commit, by thread (its loop, and the loop's
kernel time; ZeroMQ's I/O threads; the others), and the simulated workers' CPU from the job's
first message on, each per operation. `--py-spy FILE` samples the coordinator with py-spy (on-CPU
samples of the threads holding the GIL, collapsed stacks); `--profile N` runs it under cProfile.
Not collected by pytest; speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import zmq  # noqa: E402

from mapreduce import defaults, protocol, security  # noqa: E402
from mapreduce.protocol import Message  # noqa: E402

INTERVAL = defaults.HEARTBEAT_INTERVAL_S


_NOBLOCK, _MORE = int(zmq.NOBLOCK), int(zmq.NOBLOCK | zmq.SNDMORE)
_JSON = json.JSONEncoder(separators=(",", ":"))
# What an attempt that did nothing reports for a map: an empty map output (no files, its
# shuffle_stats and counters). Encoded once: every map's DONE carries the same result.
MAP_RESULT = {
    "files": {},
    "shuffle_stats": {"records": {}, "bytes": {}, "heavy_keys": []},
    "counters": {"map_input_records": 0, "map_output_records": 0},
}
_MAP_RESULT_JSON = _JSON.encode(MAP_RESULT).encode()


class SimulatedWorker:
    """One worker's side of the protocol (mapreduce/worker/process.py), with no executors: the
    same messages, written as a lean real worker would (a DONE's header is put together from
    the TASK's ids and a result encoded once; frames are sent one by one with plain int flags,
    as protocol.send does)."""

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
        self.unacked: dict = {}  # (job, task, attempt) -> [DONE header (JSON), sent at, wait]
        self.last_report = 0.0
        self.tasks = self.acks = self.reconnects = 0
        self.first_task = self.last_ack = None

    def send(self, command: bytes, header: dict) -> None:
        protocol.send(self.sock, Message(command, header), flags=zmq.NOBLOCK)

    def send_encoded(self, command: bytes, header: bytes) -> None:
        """[PROTOCOL, command, mac (empty: no run secret), header], as protocol.encode makes it."""
        sock, send = self.sock, zmq.backend.Socket.send  # pyzmq's compiled send, as protocol's
        send(sock, protocol.PROTOCOL, _MORE)
        send(sock, command, _MORE)
        send(sock, b"", _MORE)
        send(sock, header, _NOBLOCK)

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
        recv = self.sock.recv
        while True:
            try:
                frame = recv(_NOBLOCK, copy=False)
            except zmq.Again:
                return
            frames = [frame]
            while frame.more:
                frame = recv(_NOBLOCK, copy=False)
                frames.append(frame)
            message = protocol.receive([f.bytes for f in frames])
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
                done = done_header(header)
                self.unacked[key] = [done, now, INTERVAL]
                self.send_encoded(protocol.DONE, done)
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
                self.send_encoded(protocol.DONE, done)
                pending[1:] = [now, min(2 * wait, INTERVAL * defaults.HEARTBEAT_LIVENESS)]


def done_header(task: dict) -> bytes:
    """The DONE header (JSON) of an attempt that did nothing: a map reports an empty map output;
    a reduce an empty part file (written, so that the commit has its part)."""
    ids = b'{"job":%s,"task":%s,"attempt":%s,"result":' % (
        _JSON.encode(task["job"]).encode(),
        _JSON.encode(task["task"]).encode(),
        _JSON.encode(task["attempt"]).encode(),
    )
    if task.get("kind") == "map":
        return ids + _MAP_RESULT_JSON + b"}"
    os.makedirs(task["out_dir"], exist_ok=True)
    open(os.path.join(task["out_dir"], f"part-{task['partition']:05d}"), "w").close()
    return (
        ids + _JSON.encode({"files": {}, "counters": {"reduce_output_records": 0}}).encode() + b"}"
    )


def check_done_header() -> None:
    """The DONE put together here is the one protocol.encode makes of the same header."""
    task = {"job": "j-1", "task": "m00001", "attempt": 2, "kind": "map"}
    made = protocol.encode(
        Message(protocol.DONE, {**protocol.attempt_key(task), "result": MAP_RESULT})
    )
    assert made == [protocol.PROTOCOL, protocol.DONE, b"", done_header(task)], made


GATHER_S = 0.005  # a simulated worker process's pause between polls


def serve_workers(address: str, names: list, stop, results) -> None:
    """One process's simulated workers, served by one poller until `stop` is set. The timed
    duties (heartbeat reports, results to send again) are looked at every tenth of an interval,
    not after every poll: a report is at most that late."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    check_done_header()
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
    duties_at = 0.0
    cpu_at_work = None  # CPU used when the first TASK came: the job's share is counted from there
    while not stop.is_set():
        events = poller.poll(int(INTERVAL * 100))
        now = time.monotonic()
        for sock, _ in events:
            worker = by_socket[sock]
            if cpu_at_work is None and not worker.tasks:
                worker.drain(now)
                cpu_at_work = time.process_time() if worker.tasks else None
            else:
                worker.drain(now)
        if now >= duties_at:
            duties_at = now + INTERVAL / 10
            for worker in workers:
                if worker.unacked:
                    worker.resend(now)
                if now - worker.last_report >= INTERVAL:
                    worker.report(now)
        # zmq_poll costs in proportion to the sockets it looks at (125 here; a real worker has
        # one): a pause lets messages gather, so that each poll finds many sockets ready.
        time.sleep(GATHER_S)
    results.put(
        {
            "tasks": sum(w.tasks for w in workers),
            "acks": sum(w.acks for w in workers),
            "reconnects": sum(w.reconnects for w in workers),
            "cpu": time.process_time(),
            "job_cpu": time.process_time() - (cpu_at_work or 0.0),
            "first_task": min((w.first_task for w in workers if w.first_task), default=None),
            "last_ack": max((w.last_ack for w in workers if w.last_ack), default=None),
        }
    )
    for worker in workers:
        worker.sock.close(0)
    context.term()


class CpuSampler:
    """The coordinator's CPU seconds (all threads), read every 20 ms on a thread of this process,
    so that the CPU of a span given in time.monotonic() (the same clock in every process) can
    be told afterwards."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list = []  # (monotonic time, CPU seconds so far)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stopping.wait(0.02):
            self.samples.append((time.monotonic(), sum(thread_cpu_seconds(self.pid).values())))

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def between(self, start: float, end: float) -> float:
        """CPU seconds used from `start` to `end` (the samples nearest inside the span)."""
        inside = [cpu for when, cpu in self.samples if start <= when <= end]
        return inside[-1] - inside[0] if len(inside) > 1 else float("nan")


def thread_cpu_seconds(pid: int) -> dict:
    """User + system CPU seconds of each thread of a process so far, by kind: "loop" (the main
    thread, which runs the coordinator's loop), "zmq" (ZeroMQ's I/O threads: TCP and CURVE),
    "other" (the committer's, the authenticator's and other Python threads); and "loop_system",
    the part of the loop's spent in the kernel."""
    seconds = {"loop": 0.0, "zmq": 0.0, "other": 0.0, "loop_system": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # a thread that just ended
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        kind = "loop" if task.name == str(pid) else "zmq" if name.startswith("ZMQbg") else "other"
        seconds[kind] += (int(fields[11]) + int(fields[12])) / tick
        if kind == "loop":
            seconds["loop_system"] = int(fields[12]) / tick
    return seconds


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
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="sample the coordinator's CPU with py-spy (when installed) into FILE (collapsed "
        "stacks, on-CPU samples only)",
    )
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
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record"]
                + ["--pid", str(coordinator.pid), "--format", "raw", "--output", args.py_spy]
                + ["--rate", "250", "--nonblocking", "--gil"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        sampler = CpuSampler(coordinator.pid)
        started, threads = time.monotonic(), thread_cpu_seconds(coordinator.pid)
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
        threads = {k: v - threads[k] for k, v in thread_cpu_seconds(coordinator.pid).items()}
        sampler.stop()
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and stops
            spy.wait(30)
        loop_system = threads.pop("loop_system")
        cpu = sum(threads.values())
        stop.set()
        totals = [results.get(timeout=30) for _ in processes]
        tasks = sum(t["tasks"] for t in totals)
        acks = sum(t["acks"] for t in totals)
        reconnects = sum(t["reconnects"] for t in totals)
        first = min(t["first_task"] for t in totals if t["first_task"])
        last = max(t["last_ack"] for t in totals if t["last_ack"])
        steady = sampler.between(first, last)
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
            f"  from the first TASK to the last ACK (accepting the job left out): the "
            f"coordinator used {steady:.1f} s of CPU: {(tasks + acks) / steady:,.0f} per CPU "
            f"second"
        )
        print(
            f"  the coordinator's CPU by thread: loop {threads['loop']:.1f} s (of which "
            f"{loop_system:.1f} s in the kernel), ZeroMQ I/O "
            f"{threads['zmq']:.1f} s, others {threads['other']:.1f} s; per operation "
            + ", ".join(f"{k} {1e6 * v / (tasks + acks):.0f} us" for k, v in threads.items())
        )
        print(
            f"  the {args.processes} processes of simulated workers used "
            f"{sum(t['cpu'] for t in totals):.1f} s of CPU in all ("
            f"{sum(t['job_cpu'] for t in totals):.1f} s from the job's first message on: "
            f"{1e6 * sum(t['job_cpu'] for t in totals) / (tasks + acks):.0f} us per operation), "
            f"on {os.cpu_count()} cores"
        )
        print(
            f"  heartbeats missed: {dead} workers declared dead, {reconnects} told to register "
            f"again (must be 0); {len(text.splitlines())} coordinator log lines"
        )
        if args.profile:
            stop_coordinator(coordinator)
            coordinator = None
            kept = Path(tempfile.gettempdir()) / "coordinator-load.prof"
            shutil.copy(tmp / "coordinator.prof", kept)
            print(f"  the coordinator's profile: {kept}")
            stats = pstats.Stats(str(kept))
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
