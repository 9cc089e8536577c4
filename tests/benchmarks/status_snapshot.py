"""What the status page costs the coordinator's loop (issue 14): CPU time of one snapshot refresh
(`Publisher.publish`), as a ratio to the baseline every coordinator already pays for a STATUS
request (`snapshot.status_data`, what `mapreduce status` asks for), on a job of many tasks.

    python tests/benchmarks/status_snapshot.py [--maps 8000] [--reduces 200] [--workers 100]

A real Scheduler with one job: three quarters of its maps succeeded, the rest running on the
workers' slots. Three figures, each the best of --repeat runs, in CPU milliseconds:
- baseline: status_data (the jobs list and workers);
- list only: a refresh while no page shows the job (the jobs list, the metrics' scan);
- with the task table: a refresh while a page shows the job (settled tasks' rows reused).
The loop spends at most STATUS_BUILD_SHARE of its time on refreshes (it refreshes less often
when they cost more), so these figures set how fresh a huge job's page is, not how slow the loop.

Not collected by pytest; nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mapreduce import defaults  # noqa: E402
from mapreduce.coordinator.jobs import JobRecord  # noqa: E402
from mapreduce.coordinator.snapshot import Publisher, status_data  # noqa: E402
from mapreduce.coordinator.submission import JobSubmission  # noqa: E402
from mapreduce.scheduler import Scheduler, SchedulerSettings  # noqa: E402
from mapreduce.tasks import AttemptState, TaskState  # noqa: E402


def coordinator_with_a_big_job(maps: int, reduces: int, workers: int):
    """The parts of a Coordinator the publisher reads, around a real Scheduler."""
    now = time.monotonic()
    settings = SchedulerSettings()
    scheduler = Scheduler(settings)
    scheduler.add_job("job", [f"split {n}" for n in range(maps)], reduces, 4, 4, now)
    for n in range(workers):
        scheduler.worker_ready(f"w{n}", 4, now, {"host": "host", "pid": n})
    for index, task in enumerate(scheduler.jobs["job"].map_tasks):
        attempt = task.start_attempt(f"w{index % workers}", now - 1.0)
        if index < maps * 3 // 4:
            attempt.move_to(AttemptState.SUCCEEDED)
            task.move_to(TaskState.PUBLISHING)
            task.move_to(TaskState.SUCCEEDED)
    submission = JobSubmission("bench", b"", [], [], reduces, "/tmp/out")
    record = JobRecord("job", submission, "/tmp/staging", "/tmp/shuffle", now)
    return types.SimpleNamespace(
        scheduler=scheduler, jobs={"job": record}, changes=1, settings=settings
    )


def best_cpu_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--maps", type=int, default=8000)
    parser.add_argument("--reduces", type=int, default=200)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    coordinator = coordinator_with_a_big_job(args.maps, args.reduces, args.workers)
    publisher = Publisher()
    publisher.publish(coordinator, force=True)  # the metrics count the ended attempts once

    baseline = best_cpu_ms(lambda: status_data(coordinator, time.monotonic()), args.repeat)
    listed = best_cpu_ms(lambda: publisher.publish(coordinator, force=True), args.repeat)
    publisher.want("job")
    publisher.publish(coordinator, force=True)
    tabled = best_cpu_ms(lambda: publisher.publish(coordinator, force=True), args.repeat)
    size = len(publisher.current.jobs["job"])
    share = defaults.STATUS_BUILD_SHARE
    print(f"{args.maps} maps + {args.reduces} reduces, {args.workers} workers")
    print(f"baseline (status_data):   {baseline:8.1f} ms CPU")
    print(f"refresh, list only:       {listed:8.1f} ms CPU  ({listed / baseline:.2f}x baseline)")
    print(
        f"refresh, with task table: {tabled:8.1f} ms CPU  ({tabled / baseline:.2f}x baseline; "
        f"{size / 1e6:.1f} MB of JSON)"
    )
    print(
        f"a shown job refreshes every "
        f"{max(defaults.STATUS_REFRESH_S, tabled / 1000 / share - tabled / 1000):.2f} s "
        f"(at most {share:.0%} of the loop's time)"
    )


if __name__ == "__main__":
    main()
