"""The coordinator's Prometheus metrics, served at /metrics (prometheus-client's text format).

Each coordinator has its own CollectorRegistry (not the library's global one), so that several
coordinators in one process (tests, an embedded run's steps) keep theirs apart. Counters and the
histogram are updated on the loop's thread (prometheus-client's metrics are thread-safe); the
gauges and the record counters are read at scrape time from the publisher's latest immutable
snapshot (snapshot.py), never from the loop's live state.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.attempts = Counter(
            "mapreduce_task_attempts",
            "Task attempts by kind (map, reduce) and outcome (succeeded, failed, lost, "
            "cancelled: once each when it ended; backup: when a backup attempt started)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        for kind in ("map", "reduce"):  # every series from the start, at 0
            for outcome in ("succeeded", "failed", "lost", "backup", "cancelled"):
                self.attempts.labels(kind, outcome)
        self.duration = Histogram(
            "mapreduce_task_attempt_duration_seconds",
            "How long ended task attempts ran, by kind",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.missed_heartbeats = Counter(
            "mapreduce_missed_heartbeats",
            "Heartbeat intervals beyond the first that a worker stayed silent",
            registry=self.registry,
        )
        self.journal_writes = Counter(
            "mapreduce_journal_writes",
            "Records appended to the coordinator's journal",
            registry=self.registry,
        )

    def watch(self, publisher) -> None:
        """Report the figures of `publisher.current` (a Snapshot) at each scrape."""
        self.registry.register(_SnapshotCollector(publisher))

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _SnapshotCollector:
    def __init__(self, publisher) -> None:
        self._publisher = publisher

    def collect(self):
        figures = self._publisher.current.figures  # one immutable snapshot for the whole scrape
        jobs = GaugeMetricFamily(
            "mapreduce_jobs", "Jobs the coordinator knows, by state", labels=["state"]
        )
        for state, count in sorted((figures.get("jobs") or {}).items()):
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "mapreduce_workers_connected", "Registered workers", value=figures.get("workers", 0)
        )
        yield GaugeMetricFamily(
            "mapreduce_worker_slots",
            "Task slots of the registered workers",
            value=figures.get("slots", 0),
        )
        yield GaugeMetricFamily(
            "mapreduce_worker_slots_free",
            "Task slots of the registered workers running nothing",
            value=figures.get("free_slots", 0),
        )
        for name, figure, text in (
            ("mapreduce_records_in", "records_in", "Input records read by committed map attempts"),
            (
                "mapreduce_records_mapped",
                "records_mapped",
                "Records emitted by committed map attempts",
            ),
            (
                "mapreduce_records_out",
                "records_out",
                "Output records written by committed attempts",
            ),
            ("mapreduce_shuffle_bytes", "shuffle", "Bytes of map output written for the shuffle"),
        ):
            yield CounterMetricFamily(name, text, value=figures.get(figure, 0))
