"""The scheduler at the MapReduce paper's scale: M = 200,000 map tasks and R = 5,000 reduce tasks
on 2,000 workers, driven by a simulation with a simulated clock.

    python tests/benchmarks/scheduler_scale.py                       # the paper's scale
    python tests/benchmarks/scheduler_scale.py --maps 5000 --reduces 200 --workers 200  # quick
    python tests/benchmarks/scheduler_scale.py --profile 30          # cProfile's top 30 as well

The real `mapreduce.scheduler.Scheduler` gets exactly the events a coordinator feeds it: workers
registering, attempts done (a map's result carries its map-output bytes per partition, as
`shuffle_stats`), each worker's heartbeat report every heartbeat interval, published outputs, and
`tick(now)` twice per interval (which expires silent workers and starts backups). An event queue
(heapq) on a simulated clock carries out its instructions: an Assign runs the attempt on the
simulated worker for a duration drawn from a seeded log-normal distribution, an Abandon stops it, a
PublishTask is published at once. 1% of the workers die mid-job (they go silent, so the scheduler
expires them and runs their attempts elsewhere) and 2% are stragglers (every attempt on them takes
ten times as long, so near the end of each phase their attempts get backups).

The job must end committed with every task succeeded by exactly one attempt (checked). Printed:
the CPU seconds spent inside scheduler calls only (time.process_time around each call), scheduler
calls (decisions) per second of that CPU, peak RSS growth of this process over the run, and the
scheduler's state per task (every object reachable from it, at the end of the job). Targets at the
paper's scale: <= 60 s of CPU, <= 1 GB peak. Not collected by pytest; speed is never asserted in
tests.
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import io
import pstats
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mapreduce.scheduler import (  # noqa: E402
    Abandon,
    Assign,
    CommitJob,
    FailJob,
    PublishTask,
    ReplanTask,
    Scheduler,
    SchedulerSettings,
)
from mapreduce.tasks import AttemptState, TaskState  # noqa: E402

JOB = "paper"
MAP_SECONDS = 8.0  # the median map attempt, simulated seconds
REDUCE_SECONDS = 20.0  # the median reduce attempt
SPREAD = 0.3  # sigma of the log-normal durations
STRAGGLER_SLOWDOWN = 10.0  # every attempt on a straggler takes this many times as long
PARTITIONS_PER_MAP = 4  # partitions each map's output falls in (its shuffle_stats bytes)


def splits(maps: int) -> tuple[list, list]:
    """Many small synthetic splits, as inputs/plan.py's Split.to_wire() sends them: (wheres,
    splits). A list of tasks of the coordinator's shape, without files behind them."""
    wheres = [f"part-{i:06d}.txt:0+65536" for i in range(maps)]
    wire = [{"segments": [[f"/data/part-{i:06d}.txt", 0, 65536]]} for i in range(maps)]
    return wheres, wire


class Simulation:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rng = random.Random(args.seed)
        self.settings = SchedulerSettings()
        self.scheduler = Scheduler(self.settings)
        self.events: list = []  # (time, order, kind, data)
        self.order = 0
        self.now = 0.0
        self.cpu = 0.0
        self.calls = 0
        self.instructions = 0
        self.workers = [f"w{i:05d}" for i in range(args.workers)]
        picked = self.rng.sample(self.workers, len(self.workers))
        n_dead = int(round(args.workers * args.dead))
        n_slow = int(round(args.workers * args.stragglers))
        self.doomed = set(picked[:n_dead])
        self.slow = set(picked[n_dead : n_dead + n_slow])
        self.dead: set = set()
        self.running: dict = {w: {} for w in self.workers}  # worker -> {(job, task, n): event}
        self.known: dict = dict.fromkeys(self.workers, 0)  # the highest TASK number it heard of
        self.published: dict = {}  # task id -> times published
        self.assigns = self.backups = self.abandons = self.lost = 0
        self.committed = False

    # ---- the event queue ------------------------------------------------------------------------

    def at(self, when: float, kind: str, data=None) -> list:
        self.order += 1
        event = [when, self.order, kind, data, True]  # [4]: still wanted
        heapq.heappush(self.events, event)
        return event

    def call(self, method, *args) -> None:
        """One scheduler call, timed; its instructions carried out (the publishes they ask for
        are scheduler calls too, made at once as the committer would report them)."""
        started = time.process_time()
        out = method(*args)
        self.cpu += time.process_time() - started
        self.calls += 1
        self.instructions += len(out)
        for instruction in out:
            self.carry_out(instruction)

    def carry_out(self, instruction) -> None:
        if isinstance(instruction, Assign):
            self.assign(instruction)
        elif isinstance(instruction, Abandon):
            self.abandons += 1
            event = self.running.get(instruction.worker, {}).pop(
                (instruction.job, instruction.task, instruction.attempt), None
            )
            if event is not None:
                event[4] = False
        elif isinstance(instruction, PublishTask):
            task_id = instruction.task.id
            self.published[task_id] = self.published.get(task_id, 0) + 1
            self.call(self.scheduler.task_published, instruction.job, task_id, self.now)
        elif isinstance(instruction, CommitJob):
            self.scheduler.job_committed(instruction.job)
            self.committed = True
        elif isinstance(instruction, FailJob):
            raise SystemExit(f"the job failed: {instruction.task.id} {instruction.task.last_error}")
        elif isinstance(instruction, ReplanTask):
            raise SystemExit("nothing should be re-planned: no task loses its process")

    def assign(self, a: Assign) -> None:
        self.assigns += 1
        if a.worker in self.dead:
            return  # the TASK goes nowhere: the scheduler finds out when the worker expires
        self.backups += len(a.task.running()) > 1
        self.known[a.worker] = max(self.known[a.worker], a.seq)
        median = MAP_SECONDS if a.task.kind == "map" else REDUCE_SECONDS
        duration = self.rng.lognormvariate(0.0, SPREAD) * median
        if a.worker in self.slow:
            duration *= STRAGGLER_SLOWDOWN
        key = (a.job, a.task.id, a.attempt)
        self.running[a.worker][key] = self.at(self.now + duration, "done", (a.worker, key, a.task))

    def result(self, task) -> dict:
        """A map attempt's result as a map task reports it, with its map-output bytes for the
        partitions its output fell in; a reduce's, without."""
        counters = {"map_input_records": 1000, "map_output_records": 1000}
        if task.kind != "map":
            return {"files": {}, "counters": {"reduce_output_records": 100}}
        parts = self.rng.sample(range(self.args.reduces), min(PARTITIONS_PER_MAP, self.args.reduces))
        size = {str(p): self.rng.randrange(1 << 20, 8 << 20) for p in parts}
        return {"files": {}, "shuffle_stats": {"bytes": size}, "counters": counters}

    # ---- the run --------------------------------------------------------------------------------

    def run(self) -> None:
        args, s = self.args, self.scheduler
        interval = self.settings.heartbeat_interval
        wheres, wire = splits(args.maps)
        for i, worker in enumerate(self.workers):
            self.at(i * 1e-4, "ready", worker)
            self.at(interval + self.rng.random() * interval, "heartbeat", worker)
        self.at(0.2, "submit")
        self.at(interval / 2, "tick")
        # The doomed workers die while the maps run.
        expected_maps_end = args.maps / max(1, args.workers * args.slots) * MAP_SECONDS
        for worker in sorted(self.doomed):  # in a fixed order: the same run every time
            self.at(self.rng.uniform(0.2, 0.8) * expected_maps_end + 1.0, "die", worker)
        while self.events and not self.committed:
            when, _, kind, data, wanted = heapq.heappop(self.events)
            if not wanted:
                continue
            self.now = when
            if kind == "done":
                worker, key, task = data
                del self.running[worker][key]
                self.call(
                    s.attempt_succeeded, worker, key[0], key[1], key[2], self.result(task), when
                )
            elif kind == "heartbeat":
                if data in self.dead:
                    continue
                report = [list(k) for k in self.running[data]]
                self.call(s.worker_report, data, report, [], self.known[data], when)
                self.at(when + interval, "heartbeat", data)
            elif kind == "tick":
                self.call(s.tick, when)
                self.at(when + interval / 2, "tick")
            elif kind == "ready":
                self.call(s.worker_ready, data, args.slots, when, {"host": "sim", "pid": 1})
            elif kind == "submit":
                self.call(
                    s.add_job, JOB, wheres, args.reduces, 4, 10, when, wire, None, False, 100
                )
            elif kind == "die":
                self.dead.add(data)
                for event in self.running[data].values():
                    event[4] = False
                    self.lost += 1
                self.running[data].clear()

    def check(self) -> None:
        """Every task succeeded, by exactly one attempt, published exactly once."""
        job = self.scheduler.jobs[JOB]
        tasks = job.all_tasks()
        assert self.committed and job.phase == "done", job.phase
        assert len(tasks) == self.args.maps + self.args.reduces
        for task in tasks:
            assert task.state is TaskState.SUCCEEDED, (task.id, task.state)
            won = [a for a in task.attempts if a.state is AttemptState.SUCCEEDED]
            assert len(won) == 1, (task.id, task.attempts)
            assert not task.running(), task.id
            assert self.published.get(task.id) == 1, (task.id, self.published.get(task.id))
        assert len(self.published) == len(tasks)
        # The counts kept as tasks changed (progress reports) are what the tasks say.
        attempts = [a for t in tasks for a in t.attempts]
        assert job.attempt_counts == {
            "attempts": len(attempts),
            "failed": sum(a.state is AttemptState.FAILED for a in attempts),
            "lost": sum(a.state is AttemptState.LOST for a in attempts),
            "backups": sum(a.backup for a in attempts),
        }, job.attempt_counts
        assert job.succeeded == {"map": self.args.maps, "reduce": self.args.reduces}


def deep_size(root) -> int:
    """Bytes of every object reachable from `root` (each counted once)."""
    seen: set = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, (str, bytes, int, float, bool)) or obj is None:
            continue
        else:
            if hasattr(obj, "__dict__"):
                stack.append(vars(obj))
            for name in getattr(type(obj), "__slots__", ()):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))
    return total


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=200_000)
    parser.add_argument("--reduces", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2_000)
    parser.add_argument("--slots", type=int, default=1, help="task slots per worker")
    parser.add_argument("--dead", type=float, default=0.01, help="share of workers that die")
    parser.add_argument("--stragglers", type=float, default=0.02, help="share of slow workers")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N")
    args = parser.parse_args()

    before = rss_mb()
    sim = Simulation(args)
    profiler = cProfile.Profile() if args.profile else None
    wall = time.perf_counter()
    if profiler:
        profiler.enable()
    sim.run()
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - wall
    peak = rss_mb() - before
    sim.check()
    tasks = args.maps + args.reduces
    state = deep_size(sim.scheduler)
    print(
        f"scheduler at scale: M={args.maps:,} R={args.reduces:,} workers={args.workers:,} "
        f"x {args.slots} slot(s); {len(sim.doomed)} died, {len(sim.slow)} stragglers"
    )
    print(
        f"  job committed at simulated t={sim.now:,.0f} s; every task succeeded once (checked): "
        f"{sim.assigns:,} assignments ({sim.backups:,} backups), {sim.abandons:,} abandoned, "
        f"{sim.lost:,} attempts lost with dead workers"
    )
    print(
        f"  scheduling CPU {sim.cpu:.2f} s (target <= 60) for {sim.calls:,} decisions "
        f"(scheduler calls) and {sim.instructions:,} instructions: "
        f"{sim.calls / max(sim.cpu, 1e-9):,.0f} decisions/s"
    )
    print(
        f"  peak memory +{peak:,.0f} MB RSS (target <= 1024); scheduler state "
        f"{state / 1e6:,.0f} MB = {state / tasks:,.0f} bytes per task; wall {wall:.1f} s"
    )
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(args.profile)
        print(stream.getvalue())


if __name__ == "__main__":
    main()
