"""The skew report: whether one partition or one key holds a disproportionate share of a job's
shuffled records, from what its map tasks reported (no I/O).

Every map result carries `shuffle_stats` (shuffle.RunWriter.stats): records per partition and its
heaviest keys, estimated from a small sample of each run. A partition is skewed when it holds
SKEW_PARTITION_RATIO times the median of the other partitions; a key is heavy when it holds at
least a fair partition's share of all records (1 / reducers, and at least HEAVY_KEY_SHARE). Jobs
shuffling fewer than SKEW_MIN_RECORDS records are never reported: their skew costs nothing.
"""

from __future__ import annotations

import statistics
from typing import Iterable

from .defaults import HEAVY_KEY_SHARE, SKEW_MIN_RECORDS, SKEW_PARTITION_RATIO

HEAVY_KEYS_SHOWN = 3


def partition_records(map_results: Iterable[dict], num_reducers: int) -> list:
    """Shuffled records per partition (0 .. num_reducers - 1), from the maps' shuffle_stats."""
    sizes = [0] * max(num_reducers, 0)
    for result in map_results:
        stats = (result or {}).get("shuffle_stats") or {}
        for partition, count in (stats.get("records") or {}).items():
            if 0 <= int(partition) < len(sizes):
                sizes[int(partition)] += int(count)
    return sizes


class SkewTally:
    """The committed maps' shuffle_stats summed so far: `add` each map's result once, `report`
    at any time (a job's progress keeps one and adds the maps that committed since)."""

    def __init__(self) -> None:
        self.records: dict = {}
        self.heavy: dict = {}

    def add(self, result: dict | None) -> None:
        records, heavy = self.records, self.heavy
        stats = (result or {}).get("shuffle_stats") or {}
        for partition, count in (stats.get("records") or {}).items():
            records[int(partition)] = records.get(int(partition), 0) + int(count)
        for name, count in stats.get("heavy_keys") or ():
            heavy[name] = heavy.get(name, 0) + int(count)

    def report(self, num_reducers: int) -> dict | None:
        """skew_report of the results added so far."""
        records, heavy = self.records, self.heavy
        total = sum(records.values())
        if num_reducers < 1 or total < SKEW_MIN_RECORDS:
            return None
        sizes = [records.get(partition, 0) for partition in range(num_reducers)]
        largest = max(range(num_reducers), key=sizes.__getitem__)
        others = sizes[:largest] + sizes[largest + 1 :]
        others_median = statistics.median(others) if others else 0
        partition_skewed = bool(others) and sizes[largest] >= SKEW_PARTITION_RATIO * max(
            others_median, 1
        )
        share = max(HEAVY_KEY_SHARE, 1 / num_reducers)
        heavy_keys = sorted(
            ([name, min(count, total)] for name, count in heavy.items() if count >= share * total),
            key=lambda item: -item[1],
        )[:HEAVY_KEYS_SHOWN]
        if not partition_skewed and not heavy_keys:
            return None
        return {
            "partition": largest if partition_skewed else None,
            "partition_records": sizes[largest],
            "others_median": others_median,
            "total_records": total,
            "heavy_keys": heavy_keys,
        }


def skew_report(map_results: Iterable[dict], num_reducers: int) -> dict | None:
    """{"partition", "partition_records", "others_median", "total_records", "heavy_keys":
    [[key as shown, estimated records], ...]} when the shuffle is skewed, else None."""
    tally = SkewTally()
    for result in map_results:
        tally.add(result)
    return tally.report(num_reducers)


def skew_lines(report: dict | None) -> list:
    """The report as lines for the summary and `status` (none when nothing is skewed)."""
    if not report:
        return []
    total = report["total_records"]
    lines = []
    if report.get("partition") is not None:
        lines.append(
            f"skew: partition {report['partition']} holds {report['partition_records']} of "
            f"{total} shuffled records ({_percent(report['partition_records'], total)}); the "
            f"median of the other partitions is {report['others_median']:g}"
        )
    for name, count in report.get("heavy_keys") or ():
        lines.append(
            f"skew: key {name} holds about {_percent(count, total)} of the shuffled records "
            f"(~{count}, sampled on the map side)"
        )
    lines.append(
        "hint: a combiner shrinks a heavy key's records on the map side; a custom partitioner "
        "spreads the keys more evenly; or salt a heavy key (add a random suffix, reduce, then "
        "combine the partial results in a second step) so several reducers share it"
    )
    return lines


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "0%"
