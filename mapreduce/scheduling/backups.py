"""Backup-task choice: which running attempts are stragglers, from what a job's peers took.

Near the end of a phase, an attempt that has run far longer than expected gets one backup
attempt on an idle worker (MapReduce paper 3.6). Expected is worked out per job from its finished
tasks: the median duration, and for a reduce task its input bytes at the seconds per byte its
peers (or the maps) took. A job's own decisions, like engine.py's; no I/O.
"""

from __future__ import annotations

import heapq
import statistics

from ..tasks import JobPhase, Task, TaskState
from .jobstate import JobState, runs_alone
from .settings import SchedulerSettings


def stragglers(job: JobState, settings: SchedulerSettings, now: float) -> list:
    """Near the end of a phase (nothing pending), an attempt that has run far longer than
    expected gets one backup attempt on an idle worker (MapReduce paper 3.6); the longest
    running first (ties in phase order).

    Expected is the median of the finished peers' durations; for a reduce task, at least its
    input bytes (the map results give each partition's) at the seconds per byte its finished
    peers took, or, when their inputs were too small to tell (an empty partition ends at
    once), at the seconds per byte of map output the map tasks took. Backups are for slow
    machines: a reduce holding a giant key is slow because of its input, and a second
    attempt of it would only double its cost.

    Only the attempts older than the least threshold (the median's) are looked at: the
    running attempts are kept oldest first."""
    kind = "map" if job.phase is JobPhase.MAP else "reduce"
    typical = job.typical(kind)
    if typical is None:
        typical = settings.backup_min_runtime
    least = max(settings.backup_min_runtime, settings.backup_slowdown * typical)
    heap = job.started[kind]
    sizes: dict | None = None
    per_byte = 0.0
    looked: list = []
    seen: set = set()
    candidates = []
    while heap:
        started, _, task, attempt = heap[0]
        if id(attempt) in seen or not runs_alone(task, attempt):
            heapq.heappop(heap)  # it ended, or a backup runs beside it
            continue
        age = now - started
        if age <= least:
            break
        looked.append(heapq.heappop(heap))
        seen.add(id(attempt))
        if sizes is None:
            sizes = job.memo("sizes", lambda: _reduce_input_bytes(job)) if kind == "reduce" else {}
            per_byte = _per_byte(job, settings, sizes) if sizes else 0.0
        expected = max(typical, per_byte * sizes.get(task.index, 0))
        threshold = max(settings.backup_min_runtime, settings.backup_slowdown * expected)
        if age > threshold:
            candidates.append((age, task))
    for entry in looked:
        heapq.heappush(heap, entry)
    candidates.sort(key=lambda c: (-c[0], c[1].index, c[1].piece))
    return [task for _, task in candidates]


def _per_byte(job: JobState, settings: SchedulerSettings, sizes: dict) -> float:
    """_seconds_per_byte, worked out again only when another reduce finished."""
    memo = job.memo("per_byte", dict)
    if memo.get("finished") != job.finished["reduce"]:
        memo["finished"] = job.finished["reduce"]
        memo["rate"] = _seconds_per_byte(job, settings, job.reduce_tasks, sizes)
    return memo["rate"]


def _seconds_per_byte(
    job: JobState, settings: SchedulerSettings, reduces: list, sizes: dict
) -> float:
    """How long a reduce is expected to take per input byte: as its finished peers took, or
    as the maps took per byte of map output when no finished peer read enough to tell."""
    floor = settings.backup_input_floor
    finished = [(t.duration, sizes.get(t.index, 0)) for t in reduces if t.duration is not None]
    rate = _median_rate(finished, floor)
    if rate is None:
        rate = job.memo("map_rate", lambda: _map_rate(job, floor))
    return rate or 0.0


def _median_rate(pairs: list, floor: int) -> float | None:
    """The median of duration / bytes over (duration, bytes) pairs with more than `floor` bytes."""
    rates = [duration / size for duration, size in pairs if size > floor]
    return statistics.median(rates) if rates else None


def _shuffle_bytes(map_task: Task) -> dict:
    """A committed map task's bytes of output per partition (str keys), from its result."""
    stats = (map_task.result or {}).get("shuffle_stats") or {}
    return stats.get("bytes") or {}


def _map_rate(job: JobState, floor: int) -> float | None:
    """The maps' median seconds per byte of map output."""
    maps = [
        (t.duration, sum(int(n) for n in _shuffle_bytes(t).values()))
        for t in job.map_tasks
        if t.state is TaskState.SUCCEEDED and t.duration is not None
    ]
    return _median_rate(maps, floor)


def _reduce_input_bytes(job: JobState) -> dict:
    """Reduce task index -> the bytes of map output it reads, from the committed map results
    (their shuffle_stats); {} when the maps did not report them."""
    sizes: dict = {}
    for task in job.map_tasks:
        if task.state is not TaskState.SUCCEEDED:
            continue
        for partition, size in _shuffle_bytes(task).items():
            sizes[int(partition)] = sizes.get(int(partition), 0) + int(size)
    if not sizes:
        return {}
    return {task.index: sizes.get(task.index, 0) for task in job.reduce_tasks}
