"""The handling of workers' messages: READY, HEARTBEAT (with its report), DONE, FAIL, BYE.

A READY registers the worker (a version mismatch is refused); every DONE and FAIL is
acknowledged, repeats and late ones included, and handed to the scheduler, which acts on an
attempt's result once; a heartbeat's report is reconciled with what the worker was assigned (lost
TASKs sent again, unwanted attempts cancelled: Scheduler.worker_report). A message from a peer
that is not a registered worker makes it register again, except a result, which is acknowledged
and discarded. A failure that names a map output a reducer could not read runs that map again.
"""

from __future__ import annotations

import logging
import socket
from typing import Callable

from .. import protocol
from ..logformat import about
from ..protocol import Message
from .outbox import Outbox, peer_name
from .state import CoordinatorState

log = logging.getLogger("mapreduce.coordinator")


class WorkerMessages:
    def __init__(self, state: CoordinatorState, carry_out: Callable[[list], None]):
        self.state = state
        self.outbox: Outbox = state.outbox
        self.carry_out = carry_out  # the Executor's: the scheduler's instructions carried out

    def handle(self, route: bytes, message: Message, now: float) -> None:
        """A worker's message (READY, HEARTBEAT, DONE, FAIL, BYE), authenticated and decoded.
        Raises KeyError, TypeError, ValueError or AttributeError for a malformed one."""
        if message.command == protocol.READY:
            self._register(route, message.header, now)
            return
        worker = self.outbox.peers.get(route)
        if worker is None or worker not in self.state.scheduler.workers:
            self._unregistered_peer(route, message)
            return
        self.state.scheduler.heard_from(worker, now)
        header = message.header
        if message.command == protocol.HEARTBEAT and "running" in header:
            if header.get("session") == self.outbox.sessions.get(worker):
                self._reconcile(worker, header, now)
            return  # a report of an earlier session, still on its way: it says nothing now
        if message.command in (protocol.DONE, protocol.FAIL):
            _check_attempt_report(header)
            self._acknowledge(worker, header)
            if self.state.monitor is not None:
                self.state.monitor.attempt_reported(header, now, message.command == protocol.FAIL)
        if message.command == protocol.DONE:
            runtime = self._attempt_runtime(header, now)
            if log.isEnabledFor(logging.INFO):  # not formatted per message when not shown
                log.info(
                    "%s %s attempt %s on %s done in %.2f s",
                    header["job"],
                    header["task"],
                    header["attempt"],
                    worker,
                    runtime,
                    extra=about(header["job"], header["task"], header["attempt"], worker),
                )
            self.carry_out(
                self.state.scheduler.attempt_succeeded(
                    worker,
                    header["job"],
                    header["task"],
                    header["attempt"],
                    header.get("result") or {},
                    now,
                )
            )
        elif message.command == protocol.FAIL:
            self._attempt_failed(worker, header, now)
        elif message.command == protocol.BYE:
            self.outbox.forget(worker)
            self.carry_out(self.state.scheduler.worker_gone(worker, now, "it shut down"))

    def _unregistered_peer(self, route: bytes, message: Message) -> None:
        """A message from a peer that is not a registered worker (declared dead, or registered
        with this coordinator before a restart). A result is acknowledged (so the worker stops
        sending it) and discarded; anything else makes it register again. (A worker sends its
        unacknowledged results before READY: telling it to register then would start it over.)"""
        header = message.header
        if message.command in (protocol.DONE, protocol.FAIL):
            _check_attempt_report(header)
            log.warning(
                "discarded a late %s of %s %s attempt %s from unregistered peer %s "
                "(a worker declared dead, or one that registered before a restart)",
                "result" if message.command == protocol.DONE else "failure",
                header.get("job"),
                header.get("task"),
                header.get("attempt"),
                peer_name(route),
                extra=about(
                    header.get("job"), header.get("task"), header.get("attempt"), peer_name(route)
                ),
            )
            self.outbox.send(route, protocol.ACK, protocol.attempt_key(header))
            return
        log.warning(
            "ignored a %r message from unregistered peer %s; told it to register",
            message.command,
            peer_name(route),
        )
        self.outbox.peers.pop(route, None)
        # Naming the session it is about: the worker, registering again under the same routing
        # id, ignores this if it answers a message of a session it has already left.
        self.outbox.send(route, protocol.RECONNECT, {"session": header.get("session")})

    def _acknowledge(self, worker: str, header: dict) -> None:
        """Every DONE and FAIL is acknowledged, repeats included: the worker keeps sending it
        until it hears this. (The scheduler acts on an attempt's result once.)"""
        self.outbox.send_to_worker(worker, protocol.ACK, protocol.attempt_key(header))

    def _reconcile(self, worker: str, header: dict, now: float) -> None:
        """A worker's heartbeat report: TASKs lost on the way are sent again, attempts it runs
        that nobody wants are cancelled (Scheduler.worker_report decides)."""
        running = _attempt_list(header.get("running"))
        finished = _attempt_list(header.get("finished"))
        known = header.get("known")
        if type(known) is not int:
            raise ValueError("'known' must be an integer")
        self.carry_out(self.state.scheduler.worker_report(worker, running, finished, known, now))

    def _attempt_runtime(self, header: dict, now: float) -> float:
        started = self.state.started.pop((header["job"], header["task"], header["attempt"]), None)
        return now - started if started is not None else float("nan")

    def _attempt_failed(self, worker: str, header: dict, now: float) -> None:
        self.state.started.pop((header["job"], header["task"], header["attempt"]), None)
        error = header.get("error") or {}
        log.info(
            "%s %s attempt %s on %s failed%s: %s",
            header["job"],
            header["task"],
            header["attempt"],
            worker,
            " (lost)" if header.get("lost") else "",
            error.get("message"),
            extra=about(header["job"], header["task"], header["attempt"], worker),
        )
        lost_map = self._map_owning(header["job"], error.get("input"))
        if error.get("type") == protocol.NO_FREE_SLOT and header.get("lost"):
            # Not the task's loss: the worker runs something the scheduler did not know of.
            self.carry_out(
                self.state.scheduler.attempt_refused(
                    worker, header["job"], header["task"], header["attempt"], now
                )
            )
        elif lost_map is not None:
            self.state.journal_record({"type": "map_lost", "job": header["job"], "task": lost_map})
            self.carry_out(
                self.state.scheduler.map_output_lost(
                    worker, header["job"], header["task"], header["attempt"], lost_map, error, now
                )
            )
        else:
            self.carry_out(
                self.state.scheduler.attempt_failed(
                    worker,
                    header["job"],
                    header["task"],
                    header["attempt"],
                    error,
                    bool(header.get("lost")),
                    now,
                )
            )

    def _map_owning(self, job_id: str, path) -> str | None:
        """The committed map task whose output file `path` is (a reducer could not read it)."""
        state = self.state.scheduler.jobs.get(job_id)
        if not isinstance(path, str) or state is None:
            return None
        for task in state.map_tasks:
            if task.result and any(
                path in paths for paths in task.result.get("files", {}).values()
            ):
                return task.id
        return None

    def _register(self, route: bytes, header: dict, now: float) -> None:
        mismatch = protocol.version_mismatch(header)
        if mismatch:
            log.warning("refused worker %s: %s", header.get("worker"), mismatch)
            self.outbox.send(route, protocol.REFUSE, {"reason": mismatch})
            return
        worker = str(header.get("worker") or route.hex())
        self.outbox.register(worker, route, header.get("session"), now)
        info = {k: header.get(k) for k in ("host", "pid", "python", "cloudpickle")}
        heard = header.get("heard")  # None (an older worker): all it was assigned is abandoned
        self.carry_out(
            self.state.scheduler.worker_ready(
                worker,
                int(header.get("capacity") or 1),
                now,
                info,
                heard=heard if type(heard) is int else None,
            )
        )

    def exited(self, pids: list, now: float) -> None:
        """Local worker processes known to have exited (the local pool saw them go): their
        attempts are re-queued now, not after the liveness timeout."""
        here = socket.gethostname()
        for worker in list(self.state.scheduler.workers.values()):
            if worker.info.get("pid") in pids and worker.info.get("host") == here:
                log.warning(
                    "worker %s exited; its attempts run again elsewhere",
                    worker.id,
                    extra=about(worker=worker.id),
                )
                log_lost_attempts(worker, "its worker's process exited")
                self.outbox.forget(worker.id)
                self.carry_out(
                    self.state.scheduler.worker_gone(worker.id, now, "its process exited")
                )


def log_lost_attempts(worker, why: str) -> None:
    """One line per attempt a lost worker was running, naming it (the scheduler runs it again)."""
    for job, task, attempt in sorted(worker.running):
        log.warning(
            "%s %s attempt %s on %s lost: %s",
            job,
            task,
            attempt,
            worker.id,
            why,
            extra=about(job, task, attempt, worker.id),
        )


def _attempt_list(value) -> list:
    """A report's list of [job, task, attempt]; ValueError for anything else."""
    if not isinstance(value, list) or not all(
        isinstance(item, list)
        and len(item) == 3
        and isinstance(item[0], str)
        and isinstance(item[1], str)
        and type(item[2]) is int
        for item in value
    ):
        raise ValueError("a report lists attempts as [job, task, attempt]")
    return [tuple(item) for item in value]


def _check_attempt_report(header: dict) -> None:
    """DONE and FAIL carry (job, task, attempt) and a dict; anything else is malformed."""
    if not (
        isinstance(header.get("job"), str)
        and isinstance(header.get("task"), str)
        and type(header.get("attempt")) is int
    ):
        raise ValueError("an attempt report needs a job id, a task id and an attempt number")
    for name in ("result", "error"):
        if not isinstance(header.get(name) or {}, dict):
            raise ValueError(f"'{name}' must be an object")
    if isinstance(header.get("result"), dict):
        files = header["result"].get("files") or {}
        if not isinstance(files, dict) or not all(
            isinstance(p, list) and all(isinstance(x, str) for x in p) for p in files.values()
        ):
            raise ValueError("'result.files' must map partitions to lists of paths")
