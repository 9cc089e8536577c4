"""The coordinator: a thin socket loop around the scheduler.

It binds one ROUTER socket. Workers connect with DEALER sockets, register with READY, and are handed
task attempts only while they have a free slot (load balancing by request, never PUSH/PULL). Every
message is decoded by `protocol`; nothing a peer sends is ever unpickled here: job code is routed as
opaque bytes. The scheduler decides; this loop only moves bytes and files:
sends TASK/CANCEL/HEARTBEAT, publishes committed attempts and commits or aborts jobs.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import zmq

from . import commit, counters, defaults, interrupts, leftovers, protocol, security, storage
from .errors import MapReduceError, OutputError, ProtocolError, TaskFailedError
from .inputs import Split, cut_split
from .output import OUTPUT_FORMATS, finish_parts
from .protocol import Message
from .scheduler import (
    Abandon,
    Assign,
    CommitJob,
    FailJob,
    PublishTask,
    ReplanTask,
    Scheduler,
    SchedulerSettings,
)
from .tasks import AttemptState, TaskState

log = logging.getLogger("mapreduce.coordinator")


@dataclass
class JobSubmission:
    """Everything the coordinator needs to run a job; plain data, the job code as opaque bytes."""

    name: str
    job_code: bytes
    splits: list  # Split.to_wire() dicts
    split_descriptions: list  # for messages: where each map task reads
    num_reducers: int  # 0 for a map-only job
    output_dir: str
    overwrite: bool = False
    max_attempts: int = defaults.MAX_ATTEMPTS
    max_losses: int = defaults.MAX_LOST_ATTEMPTS
    output_format: str = "text"
    skip_bad_records: bool = False
    inputs: list = field(default_factory=list)  # the inputs as given (absolute): for path checks
    # How the input format's files may be cut (inputs.readers: "line" at any byte, "file" never,
    # "row group"): a task that keeps losing its process is re-planned within these limits.
    split_by: str = "file"

    def to_wire(self) -> tuple[dict, bytes]:
        header = asdict(self)
        return header, header.pop("job_code")

    @classmethod
    def from_wire(cls, header: dict, job_code: bytes) -> "JobSubmission":
        """Rebuild a client's submission; raises ProtocolError when a field is missing or mistyped."""
        types = {
            "name": str,
            "splits": list,
            "split_descriptions": list,
            "num_reducers": int,
            "output_dir": str,
            "overwrite": bool,
            "max_attempts": int,
            "max_losses": int,
            "output_format": str,
            "skip_bad_records": bool,
            "inputs": list,
            "split_by": str,
        }
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name == "job_code":
                continue
            if item.name not in header:
                if item.name in (
                    "overwrite",
                    "max_attempts",
                    "max_losses",
                    "output_format",
                    "skip_bad_records",
                    "inputs",
                    "split_by",
                ):
                    continue
                raise ProtocolError(f"job submission lacks '{item.name}'")
            value = header[item.name]
            if not isinstance(value, types[item.name]) or (
                types[item.name] is int and isinstance(value, bool)
            ):
                raise ProtocolError(f"job submission field '{item.name}' has the wrong type")
            values[item.name] = value
        if len(values["splits"]) != len(values["split_descriptions"]):
            raise ProtocolError("job submission has as many splits as split descriptions")
        if values["num_reducers"] < 0 or values.get("max_attempts", 1) < 1:
            raise ProtocolError("job submission has a negative reducer count or no attempts")
        if values.get("output_format", "text") not in (*OUTPUT_FORMATS, "arrow"):
            raise ProtocolError(f"unknown output format {values['output_format']!r}")
        if not all(isinstance(item, str) for item in values.get("inputs", [])):
            raise ProtocolError("job submission field 'inputs' must list paths")
        return cls(job_code=job_code, **values)

    def input_paths(self) -> list:
        """The inputs as given, or (from an older client) every file the splits read."""
        return self.inputs or sorted(
            {segment[0] for split in self.splits for segment in split.get("segments", [])}
        )


FINISHED_JOBS_KEPT = 100  # finished jobs remembered for `status`
LOSE_MAP_OUTPUT_ENV = "MAPREDUCE_FAULT_LOSE_MAP_OUTPUT"


@dataclass
class JobRecord:
    id: str
    submission: JobSubmission
    staging: str
    shuffle_dir: str
    submitted: float
    finished: float | None = None
    status: str = "running"  # running | succeeded | failed | cancelled
    error: MapReduceError | None = None
    counters: dict = field(default_factory=dict)
    final_progress: dict | None = None  # frozen when the job ends; its task table is dropped


class Coordinator:
    def __init__(
        self,
        bind: str,
        *,
        work_dir: str,
        secret: bytes | None = None,
        settings: SchedulerSettings | None = None,
        keys_dir: str | None = None,
    ):
        self.settings = settings or SchedulerSettings()
        self.scheduler = Scheduler(self.settings)
        self.secret = secret
        self.work_dir = work_dir
        self.jobs: dict[str, JobRecord] = {}
        self.routes: dict[str, bytes] = {}  # worker id -> routing id
        self.peers: dict[bytes, str] = {}  # routing id -> worker id
        self.last_sent: dict[str, float] = {}
        self.unreachable: set = set()  # routing ids a send failed to (logged once)
        self._injected: set = set()
        self._started: dict = {}  # (job, task, attempt) -> when it was assigned
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable send raises, not vanishes
        self.socket.setsockopt(zmq.MAXMSGSIZE, defaults.MAX_MESSAGE_BYTES)
        self.security = (
            security.secure_server(self.context, self.socket, keys_dir) if keys_dir else None
        )
        self.socket.bind(bind)
        self.address = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)

    # ---- jobs -----------------------------------------------------------------------------------

    def submit(self, submission: JobSubmission, now: float | None = None) -> str:
        commit.check_job_paths(
            submission.input_paths(),
            submission.output_dir,
            self.work_dir,
            work_dir_label="the coordinator's work directory",
        )
        commit.check_output_dir(submission.output_dir, submission.overwrite)
        self._check_claims(submission)
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        staging = commit.staging_dir_for(submission.output_dir, job_id)
        try:
            commit.create_staging(staging)
        except OSError as exc:
            raise OutputError(
                f"cannot create the output's staging directory '{staging}': {exc.strerror or exc}"
            ) from None
        shuffle_dir = storage.join(self.work_dir, job_id)
        try:
            make_job_work_dir(shuffle_dir)
        except OSError as exc:
            commit.abort_job(staging)
            raise OutputError(
                f"cannot create the job's directory in the work directory "
                f"'{self.work_dir}': {exc.strerror or exc}"
            ) from None
        now = time.monotonic() if now is None else now
        self.jobs[job_id] = JobRecord(job_id, submission, staging, shuffle_dir, now)
        self._carry_out(
            self.scheduler.add_job(
                job_id,
                submission.split_descriptions,
                submission.num_reducers,
                submission.max_attempts,
                submission.max_losses,
                now,
                map_splits=submission.splits,
                cut=split_cutter(submission.split_by),
            )
        )
        return job_id

    def _check_claims(self, submission: JobSubmission) -> None:
        """One live job per output: a second job writing the same output (or one inside it, or
        around it), or replacing a running job's input, is refused at once, --overwrite or not."""
        new = submission.output_dir
        for record in self.jobs.values():
            if record.status != "running":
                continue
            other = record.submission.output_dir
            if storage.is_within(new, other) or storage.is_within(other, new):
                raise OutputError(
                    f"job {record.id} ({record.submission.name}) is already writing "
                    f"its output to '{other}', which overlaps --output '{new}'. "
                    f"Nothing was run or changed; wait for that job to end, or "
                    f"choose another --output."
                )
            for path in record.submission.inputs:
                if storage.is_within(path, new) or storage.is_within(new, path):
                    raise OutputError(
                        f"--output '{new}' overlaps the input '{path}' of running "
                        f"job {record.id} ({record.submission.name}). Nothing was "
                        f"run or changed; wait for that job to end, or choose "
                        f"another --output."
                    )

    def cancel(self, job_id: str) -> None:
        record = self.jobs[job_id]
        if record.status == "running":
            self._carry_out(self.scheduler.cancel_job(job_id))
            self._end_job(record, "cancelled", None)

    def job(self, job_id: str) -> JobRecord:
        return self.jobs[job_id]

    def finished(self, job_id: str) -> bool:
        return self.jobs[job_id].status != "running"

    def progress(self, job_id: str) -> dict:
        """Counts for progress displays: tasks done per phase and attempts that went wrong."""
        record = self.jobs[job_id]
        if record.final_progress is not None:
            return dict(record.final_progress)
        state = self.scheduler.jobs[job_id]
        attempts = [a for t in state.all_tasks() for a in t.attempts]
        return {
            "maps_done": sum(t.state is TaskState.SUCCEEDED for t in state.map_tasks),
            "maps": len(state.map_tasks),
            "reduces_done": sum(t.state is TaskState.SUCCEEDED for t in state.reduce_tasks),
            "reduces": len(state.reduce_tasks),
            "attempts": len(attempts),
            "failed": sum(a.state is AttemptState.FAILED for a in attempts),
            "lost": sum(a.state is AttemptState.LOST for a in attempts),
            "backups": sum(a.backup for a in attempts),
            "workers": len(self.scheduler.workers),
            "elapsed": (record.finished or time.monotonic()) - record.submitted,
        }

    def job_state(self, job_id: str) -> dict:
        """What a client watching the job is told."""
        record = self.jobs[job_id]
        status = record.status
        progress = self.progress(job_id)
        if status == "running" and progress["attempts"] == 0:
            status = "queued"
        return {
            "job": job_id,
            "name": record.submission.name,
            "status": status,
            "output": record.submission.output_dir,
            "progress": progress,
            # A running job's counters so far: those of the attempts committed until now.
            "counters": record.counters if record.status != "running" else self._counters(record),
            "error": record.error.paragraph() if record.error else None,
            "exit_code": record.error.exit_code if record.error else 0,
        }

    def status(self) -> dict:
        now = time.monotonic()
        workers = [
            {
                "id": w.id,
                **w.info,
                "capacity": w.capacity,
                "running": len(w.running),
                "tasks_done": w.tasks_done,
                "last_heartbeat_s": round(now - w.last_seen, 2),
            }
            for w in self.scheduler.workers.values()
        ]
        return {"jobs": [self.job_state(job_id) for job_id in self.jobs], "workers": workers}

    # ---- the loop -------------------------------------------------------------------------------

    def poll(self, timeout: float) -> None:
        """Handle whatever arrives within `timeout` seconds, then send due heartbeats and let the
        scheduler act on elapsed time (expire silent workers, start backup attempts)."""
        timeout = min(timeout, self.settings.heartbeat_interval / 2)
        if self.socket.poll(int(timeout * 1000), zmq.POLLIN):
            while True:
                try:
                    frames = self.socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._receive(frames)
        now = time.monotonic()
        before = set(self.scheduler.workers)
        self._carry_out(self.scheduler.tick(now))
        for worker in before - set(self.scheduler.workers):
            log.warning(
                "worker %s declared dead: silent for more than %g s", worker, self.settings.expiry
            )
            self._forget(worker)
        self._send_heartbeats(now)

    def close(self) -> None:
        """Cancel the jobs still running (their staging is removed) and release the socket, the
        authenticator and the context, whatever happens on the way."""
        try:
            for record in list(self.jobs.values()):
                if record.status == "running":
                    try:
                        self.cancel(record.id)
                    except Exception:
                        log.exception("could not cancel job %s while closing", record.id)
        finally:
            self.socket.close(0)
            if self.security:
                self.security.stop()
            self.context.term()

    def workers_exited(self, pids: list, now: float | None = None) -> None:
        """Local worker processes known to have exited (the local pool saw them go): their
        attempts are re-queued now, not after the liveness timeout."""
        here = socket.gethostname()
        now = time.monotonic() if now is None else now
        for worker in list(self.scheduler.workers.values()):
            if worker.info.get("pid") in pids and worker.info.get("host") == here:
                log.warning("worker %s exited; its attempts run again elsewhere", worker.id)
                self._forget(worker.id)
                self._carry_out(self.scheduler.worker_gone(worker.id, now, "its process exited"))

    # ---- messages in ----------------------------------------------------------------------------

    def _receive(self, frames: list) -> None:
        if len(frames) < 2:
            return
        route, body = frames[0], frames[1:]
        try:
            message = protocol.decode(body, self.secret)
        except ProtocolError as exc:
            log.warning("dropped a message from peer %s: %s", route.hex(), exc)
            return
        try:
            self._dispatch_message(route, message, time.monotonic())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Authenticated but malformed (a buggy or hostile peer): drop it, keep serving.
            log.warning(
                "dropped a malformed %r message from peer %s: %s", message.command, route.hex(), exc
            )

    def _dispatch_message(self, route: bytes, message: Message, now: float) -> None:
        if message.command in protocol.CLIENT_COMMANDS:
            self._serve_client(route, message)
            return
        if message.command == protocol.READY:
            self._register(route, message.header, now)
            return
        worker = self.peers.get(route)
        if worker is None or worker not in self.scheduler.workers:
            # Declared dead, or registered with a coordinator that has since restarted: make it
            # start over; whatever it reports about old attempts is discarded.
            if message.command in (protocol.DONE, protocol.FAIL):
                header = message.header
                log.warning(
                    "discarded a late %s of %s %s attempt %s from unregistered peer %s "
                    "(a worker declared dead, or one that registered before a restart); "
                    "told it to register",
                    "result" if message.command == protocol.DONE else "failure",
                    header.get("job"),
                    header.get("task"),
                    header.get("attempt"),
                    route.hex(),
                )
            else:
                log.warning(
                    "ignored a %r message from unregistered peer %s; told it to register",
                    message.command,
                    route.hex(),
                )
            self.peers.pop(route, None)
            self._send(route, protocol.RECONNECT, {})
            return
        self.scheduler.heard_from(worker, now)
        header = message.header
        if message.command in (protocol.DONE, protocol.FAIL):
            _check_attempt_report(header)
        if message.command == protocol.DONE:
            log.info(
                "%s %s attempt %s on %s done in %.2f s",
                header["job"],
                header["task"],
                header["attempt"],
                worker,
                self._attempt_runtime(header, now),
            )
            self._carry_out(
                self.scheduler.attempt_succeeded(
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
            self._forget(worker)
            self._carry_out(self.scheduler.worker_gone(worker, now, "it shut down"))

    def _attempt_runtime(self, header: dict, now: float) -> float:
        started = self._started.pop((header["job"], header["task"], header["attempt"]), None)
        return now - started if started is not None else float("nan")

    def _attempt_failed(self, worker: str, header: dict, now: float) -> None:
        self._started.pop((header["job"], header["task"], header["attempt"]), None)
        error = header.get("error") or {}
        log.info(
            "%s %s attempt %s on %s failed%s: %s",
            header["job"],
            header["task"],
            header["attempt"],
            worker,
            " (lost)" if header.get("lost") else "",
            error.get("message"),
        )
        lost_map = self._map_owning(header["job"], error.get("input"))
        if lost_map is not None:
            self._carry_out(
                self.scheduler.map_output_lost(
                    worker, header["job"], header["task"], header["attempt"], lost_map, error, now
                )
            )
        else:
            self._carry_out(
                self.scheduler.attempt_failed(
                    worker,
                    header["job"],
                    header["task"],
                    header["attempt"],
                    error,
                    bool(header.get("lost")),
                    now,
                )
            )

    def _serve_client(self, route: bytes, message: Message) -> None:
        header = message.header
        reply = {"request": header.get("request")}
        command = message.command
        if command == protocol.SUBMIT:
            try:
                mismatch = protocol.version_mismatch(header, peer="client")
                if mismatch:
                    raise ProtocolError(mismatch)
                if len(message.blobs) != 1:
                    raise ProtocolError("job submission carries no job code")
                job_id = self.submit(
                    JobSubmission.from_wire(header.get("submission") or {}, message.blobs[0])
                )
            except MapReduceError as exc:
                self._send(route, protocol.REJECTED, {**reply, "error": exc.paragraph()})
                return
            except Exception as exc:  # a bug or an odd filesystem must not stop the service
                log.exception("could not accept a job")
                self._send(
                    route,
                    protocol.REJECTED,
                    {
                        **reply,
                        "error": f"the coordinator could not "
                        f"accept the job: {type(exc).__name__}: {exc}",
                    },
                )
                return
            log.info("accepted job %s (%s)", job_id, header.get("submission", {}).get("name"))
            self._send(route, protocol.ACCEPTED, {**reply, "job": job_id})
        elif command in (protocol.WATCH, protocol.CANCEL_JOB):
            job_id = str(header.get("job"))
            if job_id not in self.jobs:
                self._send(route, protocol.REJECTED, {**reply, "error": f"no job '{job_id}' here"})
                return
            if command == protocol.CANCEL_JOB:
                log.info("job %s cancelled by a client", job_id)
                self.cancel(job_id)
            self._send(route, protocol.JOB_STATE, {**reply, **self.job_state(job_id)})
        elif command == protocol.STATUS:
            self._send(route, protocol.STATUS_REPLY, {**reply, **self.status()})

    def _map_owning(self, job_id: str, path) -> str | None:
        """The committed map task whose output file `path` is (a reducer could not read it)."""
        state = self.scheduler.jobs.get(job_id)
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
            self._send(route, protocol.REFUSE, {"reason": mismatch})
            return
        worker = str(header.get("worker") or route.hex())
        old_route = self.routes.get(worker)
        if old_route is not None and old_route != route:
            self.peers.pop(old_route, None)
        self.routes[worker], self.peers[route] = route, worker
        self.last_sent[worker] = now
        info = {k: header.get(k) for k in ("host", "pid", "python", "cloudpickle")}
        self._carry_out(
            self.scheduler.worker_ready(worker, int(header.get("capacity") or 1), now, info)
        )

    def _forget(self, worker: str) -> None:
        route = self.routes.pop(worker, None)
        if route is not None:
            self.peers.pop(route, None)
            self.unreachable.discard(route)
        self.last_sent.pop(worker, None)

    # ---- messages out ---------------------------------------------------------------------------

    def _send(self, route: bytes, command: bytes, header: dict, blobs: tuple = ()) -> bool:
        try:
            self.socket.send_multipart(
                [route, *protocol.encode(Message(command, header, list(blobs)), self.secret)],
                zmq.NOBLOCK,
            )
            self.unreachable.discard(route)
            return True
        except (zmq.Again, zmq.ZMQError) as exc:
            # The peer vanished or its queue is full: never block the loop on one peer. Said once
            # per peer: heartbeats to a dead one fail until it is declared dead.
            (log.debug if route in self.unreachable else log.warning)(
                "could not send to peer %s: %s", route.hex(), exc
            )
            self.unreachable.add(route)
            return False

    def _send_to_worker(self, worker: str, command: bytes, header: dict, blobs: tuple = ()) -> bool:
        route = self.routes.get(worker)
        if route is None:
            return False
        sent = self._send(route, command, header, blobs)
        if sent or command == protocol.HEARTBEAT:
            self.last_sent[worker] = time.monotonic()  # a failed heartbeat waits its turn too
        return sent

    def _send_heartbeats(self, now: float) -> None:
        for worker in list(self.scheduler.workers):
            if now - self.last_sent.get(worker, 0.0) >= self.settings.heartbeat_interval:
                self._send_to_worker(worker, protocol.HEARTBEAT, {})

    # ---- instructions ---------------------------------------------------------------------------

    def _carry_out(self, instructions: list) -> None:
        """Carry out the scheduler's instructions in order. One that raises (a bug, an odd
        filesystem) fails its own job with a paragraph; the others are still carried out."""
        pending = list(instructions)
        while pending:
            instruction = pending.pop(0)
            try:
                pending.extend(self._carry_out_one(instruction))
            except Exception as exc:
                pending.extend(self._instruction_failed(instruction, exc))

    def _instruction_failed(self, instruction, exc: Exception) -> list:
        log.exception("could not carry out %s", type(instruction).__name__)
        record = self.jobs.get(str(getattr(instruction, "job", "")))
        if record is None or record.status != "running":
            return []
        out = self.scheduler.fail_job(record.id)
        self._end_job(
            record,
            "failed",
            MapReduceError(
                f"job {record.id} failed: the coordinator could not carry out a step of it "
                f"({type(instruction).__name__}): {type(exc).__name__}: {exc}. No output was "
                f"committed; the coordinator's log has the details."
            ),
        )
        return out

    def _carry_out_one(self, instruction) -> list:
        if isinstance(instruction, Assign):
            return self._assign(instruction)
        if isinstance(instruction, Abandon):
            self._send_to_worker(
                instruction.worker,
                protocol.CANCEL,
                {"job": instruction.job, "task": instruction.task, "attempt": instruction.attempt},
            )
            return []
        if isinstance(instruction, PublishTask):
            return self._publish(instruction)
        if isinstance(instruction, CommitJob):
            self._commit(self.jobs[instruction.job])
            return []
        if isinstance(instruction, FailJob):
            self._fail(self.jobs[instruction.job], instruction.task)
            return []
        if isinstance(instruction, ReplanTask):
            # (To be journalled: replaying it is Scheduler.replan_task on the same task.)
            log.warning(
                "%s %s lost %d attempt(s) (the last: %s); re-planned into %d smaller tasks: %s",
                instruction.job,
                instruction.task.id,
                instruction.task.losses,
                (instruction.task.last_error or {}).get("message"),
                len(instruction.pieces),
                ", ".join(f"{piece.id} ({piece.where})" for piece in instruction.pieces),
            )
            return []
        raise TypeError(f"unknown instruction {instruction!r}")

    def _assign(self, assign: Assign) -> list:
        record = self.jobs[assign.job]
        header = self._task_header(record, assign.task, assign.attempt)
        if self._send_to_worker(
            assign.worker, protocol.TASK, header, (record.submission.job_code,)
        ):
            log.info(
                "%s %s attempt %s assigned to %s",
                record.id,
                assign.task.id,
                assign.attempt,
                assign.worker,
            )
            self._started[(record.id, assign.task.id, assign.attempt)] = time.monotonic()
            return []
        self._forget(assign.worker)
        return self.scheduler.worker_gone(
            assign.worker, time.monotonic(), "it could not be reached"
        )

    def _task_header(self, record: JobRecord, task, attempt: int) -> dict:
        map_results = [m.result for m in self.scheduler.jobs[record.id].map_tasks]
        return task_header(
            record, task.kind, task.index, task.id, attempt, map_results, split=task.split
        )

    def _publish(self, publish: PublishTask) -> list:
        """Put the accepted attempt's output in place and tell the scheduler how it went: the job
        commits only once every task's output is in place."""
        record = self.jobs[publish.job]
        task = publish.task
        try:
            if task.kind == "map" and record.submission.num_reducers:
                # Map output stays in its attempt's directory; reducers are told its paths.
                self._inject_map_output_loss(record, task)
            elif task.piece:
                # A piece of a re-planned map-only task: joined into the task's part at commit.
                commit.publish_piece(record.staging, task.id, publish.attempt)
            else:
                commit.publish_attempt(record.staging, task.id, publish.attempt)
        except Exception as exc:  # OSError, pyarrow's ArrowInvalid (a ValueError), ...
            log.warning(
                "%s %s attempt %s: could not publish its output: %s",
                record.id,
                task.id,
                publish.attempt,
                exc,
            )
            error = {
                "type": "PublishError",
                "traceback": "",
                "message": f"its output could not be put in place: {type(exc).__name__}: {exc}",
            }
            return self.scheduler.publish_failed(publish.job, task.id, error, time.monotonic())
        return self.scheduler.task_published(publish.job, task.id, time.monotonic())

    def _inject_map_output_loss(self, record: JobRecord, task) -> None:
        """Fault injection for tests (fault matrix row 19): with MAPREDUCE_FAULT_LOSE_MAP_OUTPUT=N,
        the first committed output of map task N is deleted, as a failed disk would."""
        target = os.environ.get(LOSE_MAP_OUTPUT_ENV)
        if target is None or target != str(task.index) or (record.id, task.index) in self._injected:
            return
        self._injected.add((record.id, task.index))
        for paths in (task.result or {}).get("files", {}).values():
            for path in paths:
                storage.delete_file(path)
        log.warning("fault injection: deleted the output of %s %s", record.id, task.id)

    def _commit(self, record: JobRecord) -> None:
        """Finish the parts for their format (Parquet parts get one schema), then the final
        commit with SIGINT and SIGTERM held: whoever catches them afterwards finds the job either
        committed (the new output, whole) or not (the old one, as it was)."""
        try:
            commit.join_pieces(
                record.staging,
                self.scheduler.jobs[record.id].pieces_by_part(),
                record.submission.output_format,
            )
            finish_parts(record.staging, record.submission.output_format)
            with interrupts.held():
                commit.commit_job(
                    record.staging, record.submission.output_dir, record.submission.overwrite
                )
                self.scheduler.job_committed(record.id)
                self._end_job(record, "succeeded", None)
        except Exception as exc:
            if not isinstance(exc, MapReduceError):
                log.exception("%s: commit failed", record.id)
            error = (
                exc
                if isinstance(exc, commit.OutputTaken)
                else OutputError(
                    f"the job's tasks all succeeded but its output could not be committed to "
                    f"'{record.submission.output_dir}': {type(exc).__name__}: {exc}. Nothing was "
                    f"committed; the output directory is as it was before the job."
                )
            )
            self.scheduler.fail_job(record.id)
            self._end_job(record, "failed", error)

    def _fail(self, record: JobRecord, task) -> None:
        error = task.last_error or {}
        lost = task.losses >= record.submission.max_losses
        cause = error.get("message") or error.get("type") or "unknown error"
        self._end_job(
            record,
            "failed",
            TaskFailedError(
                task.kind,
                task.index,
                task.where,
                task.losses if lost else task.failures,
                cause,
                error.get("traceback", ""),
                lost=lost,
                log_tail=str(error.get("log_tail") or ""),
                deaths=task.deaths,
                last_exit=task.last_exit,
                piece=".".join(map(str, task.piece)),
            ),
        )

    def _end_job(self, record: JobRecord, status: str, error: MapReduceError | None) -> None:
        record.status, record.error, record.finished = status, error, time.monotonic()
        record.counters = self._counters(record)
        record.final_progress = self.progress(record.id)
        if status != "succeeded":
            commit.abort_job(record.staging)
        remove_work_dir(record.shuffle_dir)
        self._started = {key: when for key, when in self._started.items() if key[0] != record.id}
        log.info("%s %s in %.2f s", record.id, status, record.finished - record.submitted)
        self._forget_old_jobs()

    def _forget_old_jobs(self) -> None:
        """A long-lived coordinator keeps the summaries of the last finished jobs, not their tasks."""
        finished = [r for r in self.jobs.values() if r.status != "running"]
        for record in finished:
            self.scheduler.forget_job(record.id)
        for record in finished[:-FINISHED_JOBS_KEPT]:
            del self.jobs[record.id]

    def _counters(self, record: JobRecord) -> dict:
        """Sum the counters of committed attempts only: re-executed or backup attempts never count twice."""
        return counters.job_totals(
            task.result
            for task in self.scheduler.jobs[record.id].all_tasks()
            if task.state is TaskState.SUCCEEDED and task.result
        )


def task_header(
    record: JobRecord,
    kind: str,
    index: int,
    task_id: str,
    attempt: int,
    map_results: list,
    split: dict | None = None,
) -> dict:
    """What an attempt is told: its input (a split: `split`, else the submission's split
    `index`; or every committed map's files for its partition, `map_results` in map order) and
    its private output directory."""
    submission = record.submission
    header = {
        "job": record.id,
        "task": task_id,
        "attempt": attempt,
        "kind": kind,
        "output_format": submission.output_format,
        "log": commit.log_path(record.staging, task_id, attempt),
    }
    if kind == "map":
        header["split"] = split if split is not None else submission.splits[index]
        header["skip_bad_records"] = submission.skip_bad_records
        if submission.num_reducers == 0:
            header["out_dir"] = commit.attempt_dir(record.staging, task_id, attempt)
            header["part"] = index
        else:
            header["out_dir"] = storage.join(record.shuffle_dir, f"{task_id}-a{attempt}")
            header["partitions"] = submission.num_reducers
    else:
        header["partition"] = index
        header["inputs"] = [
            path
            for result in map_results
            for path in (result or {}).get("files", {}).get(str(index), [])
        ]
        header["out_dir"] = commit.attempt_dir(record.staging, task_id, attempt)
    return header


def split_cutter(split_by: str):
    """The scheduler's `cut` for a job: a split (wire form) -> its pieces [(split, where)], as
    inputs.cut_split gives them ([] when it cannot be cut, or does not parse)."""

    def cut(wire: dict) -> list:
        try:
            split = Split.from_wire(wire)
        except ProtocolError:
            return []
        return [(piece.to_wire(), piece.describe()) for piece in cut_split(split, split_by)]

    return cut


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


def make_work_dir(location: str) -> None:
    """The coordinator's shuffle directory, local or under a URI."""
    storage.make_dirs(location)


def make_job_work_dir(location: str) -> None:
    """A job's shuffle directory; a local one is marked as this process's, after removing those a
    killed run or coordinator left in the same work directory."""
    if storage.is_uri(location):  # no leftovers to look for: they are local (pids)
        storage.make_dirs(location)
        return
    leftovers.remove_abandoned(os.path.join(glob.escape(os.path.dirname(location)), "*"))
    os.makedirs(location)  # a new job's: never there already
    leftovers.mark_owned(location)


def remove_work_dir(location: str) -> None:
    storage.delete_tree_quietly(location)


def check_work_dir(work_dir: str) -> str:
    """The work directory made absolute (local) and usable, or a one-paragraph error: checked when
    the coordinator starts, not when the first job needs it."""
    work_dir = storage.absolute(work_dir)
    try:
        if not storage.bucket_exists(work_dir):
            raise MapReduceError(
                f"work directory '{work_dir}': there is no bucket "
                f"'{storage.bucket_of(work_dir)}' at that endpoint; create it or "
                f"check the spelling, AWS_ENDPOINT_URL and the credentials."
            )
        make_work_dir(work_dir)
    except MapReduceError:
        raise
    except OSError as exc:
        raise storage.describe_error(work_dir, "create the work directory", exc) from None
    return work_dir


def serve(
    bind: str,
    work_dir: str | None = None,
    settings: SchedulerSettings | None = None,
    keys_dir: str | None = None,
    insecure: bool = False,
) -> int:
    """`mapreduce coordinator`: serve jobs until SIGINT or SIGTERM; running jobs are cancelled."""
    import signal
    import sys

    security.require_keys_for(bind, keys_dir, insecure, "coordinator")
    stopping = []
    handler = lambda signum, frame: stopping.append(signum)  # noqa: E731
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    temporary = not work_dir
    work_dir = check_work_dir(work_dir) if work_dir else leftovers.owned_temp_dir("mapreduce-work-")
    try:
        try:
            coordinator = Coordinator(bind, work_dir=work_dir, settings=settings, keys_dir=keys_dir)
        except zmq.ZMQError as exc:
            raise MapReduceError(
                f"cannot listen on '{bind}': {exc}. Use an address like "
                f"tcp://127.0.0.1:5555 whose port is free."
            ) from None
        guarded = "CURVE keys from " + keys_dir if keys_dir else "no keys"
        print(
            f"mapreduce coordinator: listening on {coordinator.address}; {guarded}; work "
            f"directory {work_dir} (it must be reachable at this path from every worker)",
            file=sys.stderr,
            flush=True,
        )
        try:
            while not stopping:
                coordinator.poll(0.5)
        finally:
            coordinator.close()
    finally:
        if temporary:
            storage.delete_tree_quietly(work_dir)
    print("mapreduce coordinator: stopped", file=sys.stderr, flush=True)
    return 0
