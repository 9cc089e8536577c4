"""What the coordinator shows of itself, and how the web server's thread gets it safely.

`status_data` is what `status --json`, `/api/status` and the STATUS reply carry: the jobs (state,
progress, counters, start and end, error) and the workers (host, pid, slots, the attempts they
run, last heartbeat). `/api/jobs/<id>` adds a job's tasks with their attempts, and its partition
sizes.

The loop is single-threaded and its state (the scheduler, the job records) is mutable, so the
web server's thread never reads it. The loop calls `Publisher.publish` after each poll; at most
every STATUS_REFRESH_S seconds, only when something changed (or ten intervals passed: elapsed
times move), and never spending more than STATUS_BUILD_SHARE of the loop's time on it, the
publisher builds the data, encodes it to JSON and swaps a new immutable `Snapshot` in with one
reference assignment. The web thread reads `Publisher.current` and serves its bytes; what it
asks for (a job's page) it leaves as a note (`want`) that the loop reads on its next publish. A
job's task table is built only while a page asks for it, and settled tasks' rows are reused.

The publisher also keeps what the scheduler does not: when each attempt ended, why an attempt
failed (its message and log tail), and the task tables of ended jobs (the scheduler drops them).
It feeds `Metrics` (metrics.py) as it goes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .. import defaults
from ..skew import partition_records
from ..tasks import AttemptState, TaskState
from . import jobs as job_records


def status_data(coordinator, now: float, earlier: tuple = ()) -> dict:
    """The coordinator's jobs and workers, as `status --json` prints them. `earlier`: the states
    of jobs of an embedded run's earlier steps (each step has its own coordinator)."""
    return {
        "time": time.time(),
        "jobs": list(earlier)
        + [
            job_records.job_state(coordinator.scheduler, record, now)
            for record in coordinator.jobs.values()
        ],
        "workers": job_records.workers_state(coordinator.scheduler, now),
    }


def attempt_key(job: str, task: str, attempt: int) -> tuple:
    return (job, task, attempt)


@dataclass(frozen=True)
class Snapshot:
    """One immutable picture, served as it is by the web thread."""

    status: bytes = b'{"jobs": [], "workers": []}'  # /api/status
    jobs: dict = field(default_factory=dict)  # job id -> /api/jobs/<id>
    figures: dict = field(default_factory=dict)  # what Metrics' collector reports
    # Jobs whose JSON has all a page can get: their task table, or none to be had (history).
    complete: frozenset = frozenset()
    built_at: float = 0.0  # time.monotonic()


class Publisher:
    """Builds snapshots on the loop's thread; `current` is read by the web server's thread."""

    def __init__(self) -> None:
        from .metrics import Metrics  # prometheus-client: imported only when a page is served

        self.metrics = Metrics()
        self.metrics.watch(self)
        self.current = Snapshot()
        self.wanted: dict = {}  # job id -> when a page last asked for it (set by the web thread)
        self._seen_changes = -1
        self._next = 0.0  # no rebuild before this time.monotonic()
        self._ended: dict = {}  # (job, task, attempt) -> time.monotonic() it ended
        self._errors: dict = {}  # (job, task, attempt) -> (message, log tail)
        self._counted: dict = {}  # job id -> {id(task): attempts counted in the metrics}
        self._tasks: dict = {}  # job id -> its task table, kept once the job ended
        self._rows: dict = {}  # job id -> settled tasks' rows, encoded (_task_table)
        self._earlier: list = []  # job states of an embedded run's earlier coordinators
        self._silence: dict = {}  # worker id -> (last_seen, missed heartbeats counted)
        self._totalled: set = set()  # ended jobs whose records are in _totals
        self._totals = {"records_in": 0, "records_mapped": 0, "records_out": 0, "shuffle": 0}

    # ---- events from the loop -------------------------------------------------------------------

    def want(self, job_id: str) -> None:
        """Called from the web thread: a page shows this job (one dict item set under the GIL)."""
        self.wanted[job_id] = time.monotonic()

    def attempt_reported(self, header: dict, now: float, failed: bool) -> None:
        """A DONE or FAIL arrived: the attempt ended now; a failure's message and log tail."""
        if header["job"] in self._totalled:
            return  # a late report about a job that ended: its table is kept as it ended
        key = attempt_key(header["job"], header["task"], header["attempt"])
        self._ended.setdefault(key, now)
        if failed:
            error = header.get("error") or {}
            message = str(error.get("message") or error.get("type") or "failed")
            tail = str(error.get("log_tail") or "")[-defaults.STATUS_LOG_TAIL_CHARS :]
            self._errors[key] = (message, tail)

    def journal_written(self) -> None:
        self.metrics.journal_writes.inc()

    def job_ended(self, coordinator, record) -> None:
        """A job ended: count its last attempts and keep its task table (the scheduler drops it
        once the job's files are cleaned up)."""
        now = time.monotonic()
        state = coordinator.scheduler.jobs.get(record.id)
        if state is not None:
            self._count_attempts(record.id, state, now)
            self._tasks[record.id] = {
                "tasks": self._task_table(record.id, state, now),
                **_partitions(state),
            }
        self._totalled.add(record.id)
        for name, counter in _RECORD_COUNTERS.items():
            self._totals[name] += int(record.counters.get(counter) or 0)
        self._counted.pop(record.id, None)
        self._rows.pop(record.id, None)
        for store in (self._ended, self._errors):
            for key in [key for key in store if key[0] == record.id]:
                del store[key]
        self._next = 0.0  # show the end at once

    def detach(self, coordinator) -> None:
        """An embedded run's step is over: its jobs stay on the page after the next step's."""
        now = time.monotonic()
        self.publish(coordinator, force=True)
        self._earlier += [
            job_records.job_state(coordinator.scheduler, record, now)
            for record in coordinator.jobs.values()
        ]

    # ---- publishing -----------------------------------------------------------------------------

    def publish(self, coordinator, force: bool = False) -> None:
        """Rebuild the snapshot if it is due and something changed (see the module's text)."""
        now = time.monotonic()
        wanted_since = now - defaults.STATUS_DETAIL_WANTED_S
        asked = any(  # a page waits for a job's table
            job_id not in self.current.complete
            for job_id, when in list(self.wanted.items())
            if when >= wanted_since
        )
        if not force and not asked:
            unchanged = coordinator.changes == self._seen_changes
            if now < self._next or (unchanged and now - self.current.built_at < _STALE_S):
                return
        self._seen_changes = coordinator.changes
        status = status_data(coordinator, now, tuple(self._earlier))
        details = {}
        complete = set()
        live = coordinator.scheduler.jobs
        for job in status["jobs"]:
            job_id = job["job"]
            state = live.get(job_id)
            if state is not None and state.ended:
                state = None  # its table was kept when it ended (job_ended)
            if state is not None:
                self._count_attempts(job_id, state, now)
            if state is not None and self.wanted.get(job_id, 0.0) >= wanted_since:
                table = {"tasks": self._task_table(job_id, state, now), **_partitions(state)}
            else:
                table = self._tasks.get(job_id) or {"tasks": None, "partitions": None}
            if state is None or table["tasks"] is not None:  # nothing more to wait for
                complete.add(job_id)
            head = json.dumps({**job, "partitions": table["partitions"], "time": status["time"]})
            tasks = table["tasks"] or "null"  # the table comes encoded (see _task_table)
            details[job_id] = f'{head[:-1]}, "tasks": {tasks}}}'.encode()
        known = set(details)
        for store in (self._tasks, self.wanted):
            for job_id in [job_id for job_id in list(store) if job_id not in known]:
                store.pop(job_id, None)
        self._totalled &= known
        self._count_silence(coordinator, now)
        figures = self._figures(status)
        snapshot = Snapshot(
            status=json.dumps(status).encode(),
            jobs=details,
            figures=figures,
            complete=frozenset(complete),
            built_at=now,
        )
        self.current = snapshot  # the one reference the web thread reads
        spent = time.monotonic() - now
        self._next = now + max(
            defaults.STATUS_REFRESH_S, spent / defaults.STATUS_BUILD_SHARE - spent
        )

    # ---- what the snapshot holds ----------------------------------------------------------------

    def _task_table(self, job_id: str, state, now: float) -> str:
        """The job's tasks and their attempts, as a JSON list. A settled task's row (nothing
        running, no new attempt since) is encoded once and reused: a huge job's table costs
        about what its running tasks cost."""
        wall = time.time() - now  # add to a time.monotonic() for the wall clock
        rows = self._rows.setdefault(job_id, {})  # id(task) -> (its signature, its JSON)
        table = []
        for task in state.all_tasks():
            settled = task.state in _SETTLED and not task.running()
            signature = (task.state, len(task.attempts))
            cached = rows.get(id(task)) if settled else None
            if cached is not None and cached[0] == signature:
                table.append(cached[1])
                continue
            attempts = []
            for a in task.attempts:
                key = attempt_key(job_id, task.id, a.number)
                ended = None if a.state is AttemptState.RUNNING else self._ended.get(key, now)
                message, tail = self._errors.get(key, (None, ""))
                if a.state is AttemptState.LOST and message is None:
                    message = "lost with its worker"
                attempts.append(
                    {
                        "attempt": a.number,
                        "state": a.state.value,
                        "worker": a.worker or None,  # None: started before a restart
                        "backup": a.backup,
                        "lost": a.state is AttemptState.LOST,
                        "started_at": wall + a.started if a.worker else None,
                        "ended_at": wall + ended if ended is not None and a.worker else None,
                        "duration": ((ended or now) - a.started) if a.worker else None,
                        "error": message,
                        "log_tail": tail,
                    }
                )
            last_error = (task.last_error or {}).get("message")
            row = json.dumps(
                {
                    "task": task.id,
                    "kind": task.kind,
                    "where": task.where,
                    "state": task.state.value,
                    "error": last_error if task.state is TaskState.FAILED else None,
                    "attempts": attempts,
                }
            )
            if settled:
                rows[id(task)] = (signature, row)
            table.append(row)
        return "[" + ", ".join(table) + "]"

    def _count_attempts(self, job_id: str, state, now: float) -> None:
        """Count each attempt once in the metrics when it has ended (and a backup when it
        started), with its duration. A task whose attempts are all counted is passed over
        without work (its id is not even formatted): a huge job costs little per refresh."""
        counted = self._counted.setdefault(job_id, {})  # id(task) -> (backups, ended) counted
        for task in state.all_tasks():
            attempts = task.attempts
            if not attempts:
                continue
            backups, ended = counted.setdefault(id(task), (set(), set()))
            if len(ended) == len(attempts):
                continue
            for a in attempts:
                if not a.worker:  # started before a restart: counted by the earlier process
                    ended.add(a.number)
                    continue
                if a.backup and a.number not in backups:
                    backups.add(a.number)
                    self.metrics.attempts.labels(task.kind, "backup").inc()
                if a.state is AttemptState.RUNNING or a.number in ended:
                    continue
                ended.add(a.number)
                end = self._ended.setdefault(attempt_key(job_id, task.id, a.number), now)
                self.metrics.attempts.labels(task.kind, _OUTCOMES[a.state]).inc()
                self.metrics.duration.labels(task.kind).observe(max(0.0, end - a.started))

    def _count_silence(self, coordinator, now: float) -> None:
        """Missed heartbeats: the heartbeat intervals beyond the first that a worker was silent."""
        interval = coordinator.settings.heartbeat_interval
        silence = {}
        for worker in coordinator.scheduler.workers.values():
            last_seen, counted = self._silence.get(worker.id, (worker.last_seen, 0))
            if last_seen != worker.last_seen:
                counted = 0
            missed = max(0, int((now - worker.last_seen) / interval) - 1)
            if missed > counted:
                self.metrics.missed_heartbeats.inc(missed - counted)
                counted = missed
            silence[worker.id] = (worker.last_seen, counted)
        self._silence = silence

    def _figures(self, status: dict) -> dict:
        by_state = dict.fromkeys(("queued", "running", "succeeded", "failed", "cancelled"), 0)
        records = dict(self._totals)
        for job in status["jobs"]:
            by_state[job["status"]] = by_state.get(job["status"], 0) + 1
            if job["status"] in ("queued", "running") and job["job"] not in self._totalled:
                for name, counter in _RECORD_COUNTERS.items():
                    records[name] += int((job.get("counters") or {}).get(counter) or 0)
        workers = status["workers"]
        return {
            "jobs": by_state,
            "workers": len(workers),
            "slots": sum(w["capacity"] for w in workers),
            "free_slots": sum(w["free_slots"] for w in workers),
            **records,
        }


# Even with nothing received, elapsed times and heartbeat ages move: refreshed this often anyway.
_STALE_S = 10 * defaults.STATUS_REFRESH_S

_SETTLED = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.REPLANNED}
)

_OUTCOMES = {
    AttemptState.SUCCEEDED: "succeeded",
    AttemptState.FAILED: "failed",
    AttemptState.LOST: "lost",
    AttemptState.KILLED: "cancelled",
}

# figure -> the job counter it sums
_RECORD_COUNTERS = {
    "records_in": "map_input_records",
    "records_mapped": "map_output_records",
    "records_out": "output_records",
    "shuffle": "shuffle_bytes",
}


def _partitions(state) -> dict:
    """Shuffled records per partition, from the committed maps (None: a map-only job)."""
    if not state.reduce_tasks:
        return {"partitions": None}
    return {
        "partitions": partition_records(
            (t.result for t in state.map_tasks if t.state is TaskState.SUCCEEDED),
            len(state.reduce_tasks),
        )
    }
