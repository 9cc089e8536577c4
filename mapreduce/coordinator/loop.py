"""The coordinator's loop: one ROUTER socket, heartbeats and routing around the scheduler.

Workers connect with DEALER sockets, register with READY, and are handed task attempts only while
they have a free slot (load balancing by request, never PUSH/PULL). Every message is decoded by
`protocol`; nothing a peer sends is ever unpickled here: job code is routed as opaque bytes. The
scheduler decides; the loop carries out its instructions: it sends TASK and CANCEL, and hands
publishing and committing to the `Committer` (its own thread), whose outcomes come back as events.
Job records and what clients are told live in `jobs`.

Delivery (protocol.py states the guarantees): every DONE and FAIL is acknowledged (ACK), repeats
and late ones included; TASKs carry their per-worker number and every other message to a worker the
highest number sent so far, and each worker heartbeat's report goes to `Scheduler.worker_report`,
which sends lost TASKs again and cancels attempts nobody wants. A worker reconnecting under its
routing id takes its route over (ROUTER_HANDOVER).

An elected leader (`leadership`, election.py) checks its term before every poll, every journal
write (the journal's fence) and every commit step (the committer's): once it lost the election,
`poll` raises LeadershipLost and the service lets go with `abandon()`, writing nothing more.
"""

from __future__ import annotations

import logging
import socket
import time

import zmq

from .. import commit, defaults, interrupts, protocol, security
from ..election import LeadershipLost
from ..errors import MapReduceError, ProtocolError
from ..logformat import about
from ..protocol import Message
from ..scheduler import (
    Abandon,
    Assign,
    CommitJob,
    FailJob,
    PublishTask,
    ReplanTask,
    Scheduler,
    SchedulerSettings,
)
from . import jobs, snapshot
from . import journal as journal_records
from .committer import CleanedUp, CommitFailed, Committed, Committer, Published, PublishFailed
from .jobs import JobRecord, JobStatus, answer_client, task_header
from .journal import Journal
from .submission import JobSubmission, check_allowed_paths

log = logging.getLogger("mapreduce.coordinator")

# Messages read in one iteration of the loop at most, before its other duties come round.
MESSAGES_PER_ITERATION = 2000
REFUSED_SUBMITS_KEPT = 1000  # refused SUBMITs remembered by request id, so a copy is refused too


class Coordinator:
    def __init__(
        self,
        bind: str,
        *,
        work_dir: str,
        secret: bytes | None = None,
        settings: SchedulerSettings | None = None,
        keys_dir: str | None = None,
        finished_jobs_kept: int = defaults.FINISHED_JOBS_KEPT,
        journal: Journal | None = None,
        leadership=None,
        allowed_paths: tuple = (),
    ):
        self.leadership = leadership  # election.Leadership of an elected leader, else None
        self.allowed_paths = list(allowed_paths)  # --allow-path: where jobs may read and write
        self.settings = settings or SchedulerSettings()
        self.scheduler = Scheduler(self.settings)
        self.secret = secret
        self.work_dir = work_dir
        self.finished_jobs_kept = finished_jobs_kept
        self.jobs: dict[str, JobRecord] = {}
        self.committer = Committer(fence=leadership.confirm if leadership else None)
        self.journal = journal
        self.routes: dict[str, bytes] = {}  # worker id -> routing id
        self.peers: dict[bytes, str] = {}  # routing id -> worker id
        self.last_sent: dict[str, float] = {}
        self.unreachable: set = set()  # routing ids a send failed to (logged once)
        self._started: dict = {}  # (job, task, attempt) -> when it was assigned
        self._listened_at = time.monotonic()  # when poll last read the socket
        self._duties_at = 0.0  # when poll next looks at the clock's duties (_timed_duties)
        self.tasks_sent: dict[str, int] = {}  # worker id -> the highest TASK number sent to it
        self.sessions: dict[str, object] = {}  # worker id -> the session its READY named
        self.refused_submits: dict[str, Message] = {}  # request id -> REJECTED, oldest first
        self.monitor: snapshot.Publisher | None = None  # when a status page is served (web/)
        self._may_send: dict = {}  # (the sender's roles, command) -> may it send that?
        self.changes = 0  # messages, outcomes and instructions so far: has anything changed?
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable send raises, not vanishes
        # A peer reconnecting under its routing id (a cut connection) takes over its route even
        # before the old connection is noticed to be gone.
        self.socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.socket.setsockopt(zmq.MAXMSGSIZE, defaults.MAX_MESSAGE_BYTES)
        self.security = (
            security.secure_server(self.context, self.socket, keys_dir) if keys_dir else None
        )
        self.socket.bind(bind)
        self.address = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.poller = zmq.Poller()
        self.poller.register(self.socket, zmq.POLLIN)
        self.poller.register(self.committer.fileno(), zmq.POLLIN)
        if journal is not None:
            self._recover(journal)

    # ---- jobs (the client API) ------------------------------------------------------------------

    def submit(
        self, submission: JobSubmission, request: str | None = None, now: float | None = None
    ) -> str:
        """Accept a job (checked again: a coordinator trusts no client) and start it; returns its
        id. A SUBMIT re-sent with the same request id returns the job it started."""
        if request is not None:
            for record in self.jobs.values():
                if record.request == request:
                    return record.id
        check_allowed_paths(submission, self.allowed_paths)
        commit.check_job_paths(
            submission.input_paths(),
            submission.output_dir,
            self.work_dir,
            work_dir_label="the coordinator's work directory",
        )
        commit.check_output_dir(submission.output_dir, submission.overwrite)
        jobs.check_claims(self.jobs.values(), submission)
        job_id = jobs.new_job_id()
        staging, shuffle_dir = jobs.create_job_dirs(job_id, submission, self.work_dir)
        now = time.monotonic() if now is None else now
        record = JobRecord(job_id, submission, staging, shuffle_dir, now, request=request)
        self.jobs[job_id] = record
        header, code = submission.to_wire()
        self._journal(
            {
                "type": "submitted",
                "job": job_id,
                "at": record.submitted_at,
                "request": request,
                "staging": staging,
                "shuffle_dir": shuffle_dir,
                "submission": header,
                "code": journal_records.encode_code(code),
            }
        )
        if self.journal is not None:
            self.journal.sync()  # the client is told the job id only once a restart keeps it
        self._carry_out(
            self.scheduler.add_job(
                job_id,
                submission.split_descriptions,
                submission.num_reducers,
                submission.max_attempts,
                submission.max_losses,
                now,
                map_splits=submission.splits,
                cut=submission.cut,
                **submission.skipping(),
            )
        )
        return job_id

    def cancel(self, job_id: str) -> None:
        """Cancel a running job. One that is committing is not cut short: it ends committed or
        failed, and the client is told which."""
        record = self.jobs[job_id]
        if record.running and self.scheduler.cancellable(job_id):
            self._carry_out(self.scheduler.cancel_job(job_id))
            self._end_job(record, JobStatus.CANCELLED, None)

    def knows(self, job_id: str) -> bool:
        return job_id in self.jobs

    def job(self, job_id: str) -> JobRecord:
        return self.jobs[job_id]

    def finished(self, job_id: str) -> bool:
        """The job ended and its staging and shuffle files are cleaned up."""
        return self.jobs[job_id].over

    def progress(self, job_id: str) -> dict:
        return jobs.progress(self.scheduler, self.jobs[job_id], time.monotonic())

    def job_state(self, job_id: str) -> dict:
        return jobs.job_state(self.scheduler, self.jobs[job_id], time.monotonic())

    def status(self) -> dict:
        return snapshot.status_data(self, time.monotonic())

    # ---- the loop -------------------------------------------------------------------------------

    def poll(self, timeout: float) -> None:
        """Handle whatever arrives within `timeout` seconds (messages, the committer's outcomes),
        then send due heartbeats and let the scheduler act on elapsed time (expire silent
        workers, start backup attempts)."""
        timeout = min(timeout, self.settings.heartbeat_interval / 2)
        if self.leadership is not None:
            self.leadership.check()
        self.committer.hand_over()  # steps asked for between polls (a cancel, exited workers)
        before_poll = time.monotonic()
        events = dict(self.poller.poll(int(timeout * 1000)))
        if self.leadership is not None:
            # The process may have been stopped while it waited: before acting on anything that
            # came in (acknowledging a result another leader needs), is it still the leader?
            self.leadership.check()
        # Time this loop did not listen: between the last poll and this one, and a poll that
        # overslept (the process was stopped: SIGSTOP, a suspended VM). Workers were not silent
        # then, nobody read them; what they sent may still be on its way in.
        deaf = (before_poll - self._listened_at) + max(
            0.0, time.monotonic() - before_poll - timeout
        )
        if deaf > self.settings.heartbeat_interval:
            self.scheduler.paused(deaf)
            (log.warning if deaf > self.settings.expiry / 2 else log.debug)(
                "the coordinator did not listen for %.1f s; workers get that time back", deaf
            )
        if self.socket in events:
            # What has arrived, up to a bound: under a flood the rest of the iteration (the
            # committer's outcomes, heartbeats out) still comes round; the poll returns at once.
            for _ in range(MESSAGES_PER_ITERATION):
                try:
                    frames = _receive_frames(self.socket)
                except zmq.Again:
                    break
                # With keys, ZAP named the sender's roles: they decide what it may send.
                roles = security.sender_role(frames[-1]) if self.security else None
                self._receive([frame.bytes for frame in frames], roles)
        self._take_outcomes()
        now = self._listened_at = time.monotonic()
        if now >= self._duties_at:
            # Expiry, backups and heartbeats look at every worker: ten times an interval is
            # often enough for them (a heartbeat leaves at most a tenth of an interval late),
            # not after every poll of a busy loop.
            self._duties_at = now + self.settings.heartbeat_interval / 10
            self._timed_duties(now)
        self.committer.hand_over()  # this iteration's publishes, in one go
        if self.journal is not None:
            self.journal.flush()
            if self.journal.needs_compaction():
                self._compact(self.journal)
        if self.monitor is not None:
            self.monitor.publish(self)

    def _timed_duties(self, now: float) -> None:
        """Let the scheduler act on elapsed time (silent workers declared dead, backups), then
        send the heartbeats that are due."""
        before = dict(self.scheduler.workers)
        self._carry_out(self.scheduler.tick(now))
        for worker in before.keys() - self.scheduler.workers.keys():
            log.warning(
                "worker %s declared dead: silent for more than %g s",
                worker,
                self.settings.expiry,
                extra=about(worker=worker),
            )
            _log_lost_attempts(before[worker], "its worker was declared dead")
            self._forget(worker)
        self._send_heartbeats(now)

    def close(self, cancel_running: bool = True) -> int:
        """Stop: cancel the jobs still running (their staging is removed), or, with
        `cancel_running=False` (a service with a journal), leave them for the next start to
        resume. A commit under way finishes first. Releases the committer, the journal, the
        socket, the authenticator and the context, whatever happens on the way. Returns the
        number of jobs left running."""
        try:
            if cancel_running:
                for record in list(self.jobs.values()):
                    if record.running:
                        try:
                            self.cancel(record.id)
                        except Exception:
                            log.exception("could not cancel job %s while closing", record.id)
            self.committer.drain()
            self._take_outcomes()  # a commit that was under way has ended: record how
            self.committer.drain()
            self._take_outcomes()
        finally:
            try:
                self.committer.close()
                if self.journal is not None:
                    self.journal.close()
            finally:
                self.socket.close(0)
                if self.security:
                    self.security.stop()
                self.context.term()
        return sum(record.running for record in self.jobs.values())

    def abandon(self) -> None:
        """Let go at once, writing nothing more: the leadership was lost (a newer leader owns
        the journal and the jobs now). Queued commit steps are skipped by the committer's fence."""
        try:
            self.committer.close()
            if self.journal is not None:
                self.journal.abandon()
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
                log.warning(
                    "worker %s exited; its attempts run again elsewhere",
                    worker.id,
                    extra=about(worker=worker.id),
                )
                _log_lost_attempts(worker, "its worker's process exited")
                self._forget(worker.id)
                self._carry_out(self.scheduler.worker_gone(worker.id, now, "its process exited"))

    # ---- messages in ----------------------------------------------------------------------------

    def _receive(self, frames: list, roles: str | None = None) -> None:
        if len(frames) < 2:
            return
        route, body = frames[0], frames[1:]
        self.changes += 1
        try:
            message = protocol.receive(body, self.secret)
        except ProtocolError as exc:
            log.warning("dropped a message from peer %s: %s", _peer_name(route), exc)
            return
        if message is None:
            return
        allowed = self._may_send.get((roles, message.command))
        if allowed is None:  # asked once per role and command (a dict lookup after that)
            allowed = self._may_send[roles, message.command] = security.may_send(
                roles, message.command
            )
        if not allowed:
            self._refuse_role(route, message, roles or "")
            return
        try:
            self._dispatch_message(route, message, time.monotonic())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Authenticated but malformed (a buggy or hostile peer): drop it, keep serving.
            log.warning(
                "dropped a malformed %r message from peer %s: %s",
                message.command,
                _peer_name(route),
                exc,
            )

    def _refuse_role(self, route: bytes, message: Message, roles: str) -> None:
        """A peer whose key's role does not allow what it sent: a client command is answered
        REJECTED, a READY with REFUSE (the worker stops), anything else dropped."""
        reason = security.role_refusal(roles, message.command)
        log.warning(
            "refused a %r message from peer %s: %s", message.command, _peer_name(route), reason
        )
        if message.command in protocol.CLIENT_COMMANDS:
            request = message.header.get("request")
            self._send(route, protocol.REJECTED, {"request": request, "error": reason})
        elif message.command == protocol.READY:
            self._send(route, protocol.REFUSE, {"reason": reason})

    def _dispatch_message(self, route: bytes, message: Message, now: float) -> None:
        if message.command in protocol.CLIENT_COMMANDS:
            self._serve_client(route, message)
            return
        if message.command == protocol.READY:
            self._register(route, message.header, now)
            return
        worker = self.peers.get(route)
        if worker is None or worker not in self.scheduler.workers:
            self._unregistered_peer(route, message)
            return
        self.scheduler.heard_from(worker, now)
        header = message.header
        if message.command == protocol.HEARTBEAT and "running" in header:
            if header.get("session") == self.sessions.get(worker):
                self._reconcile(worker, header, now)
            return  # a report of an earlier session, still on its way: it says nothing now
        if message.command in (protocol.DONE, protocol.FAIL):
            _check_attempt_report(header)
            self._acknowledge(worker, header)
            if self.monitor is not None:
                self.monitor.attempt_reported(header, now, message.command == protocol.FAIL)
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

    # ---- delivery: acknowledgements and worker reports (protocol.py) -----------------------------

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
                _peer_name(route),
                extra=about(
                    header.get("job"), header.get("task"), header.get("attempt"), _peer_name(route)
                ),
            )
            self._send(route, protocol.ACK, protocol.attempt_key(header))
            return
        log.warning(
            "ignored a %r message from unregistered peer %s; told it to register",
            message.command,
            _peer_name(route),
        )
        self.peers.pop(route, None)
        # Naming the session it is about: the worker, registering again under the same routing
        # id, ignores this if it answers a message of a session it has already left.
        self._send(route, protocol.RECONNECT, {"session": header.get("session")})

    def _acknowledge(self, worker: str, header: dict) -> None:
        """Every DONE and FAIL is acknowledged, repeats included: the worker keeps sending it
        until it hears this. (The scheduler acts on an attempt's result once.)"""
        self._send_to_worker(worker, protocol.ACK, protocol.attempt_key(header))

    def _reconcile(self, worker: str, header: dict, now: float) -> None:
        """A worker's heartbeat report: TASKs lost on the way are sent again, attempts it runs
        that nobody wants are cancelled (Scheduler.worker_report decides)."""
        running = _attempt_list(header.get("running"))
        finished = _attempt_list(header.get("finished"))
        known = header.get("known")
        if type(known) is not int:
            raise ValueError("'known' must be an integer")
        self._carry_out(self.scheduler.worker_report(worker, running, finished, known, now))

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
            extra=about(header["job"], header["task"], header["attempt"], worker),
        )
        lost_map = self._map_owning(header["job"], error.get("input"))
        if error.get("type") == protocol.NO_FREE_SLOT and header.get("lost"):
            # Not the task's loss: the worker runs something the scheduler did not know of.
            self._carry_out(
                self.scheduler.attempt_refused(
                    worker, header["job"], header["task"], header["attempt"], now
                )
            )
        elif lost_map is not None:
            self._journal({"type": "map_lost", "job": header["job"], "task": lost_map})
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
        request = message.header.get("request")
        idempotent = message.command == protocol.SUBMIT and isinstance(request, str)
        request = str(request)
        # A SUBMIT sent again whose first copy was refused gets the same refusal: one that got in
        # now (the output it wanted became free) would run a job no client follows. (One that was
        # accepted is answered with its job by `submit`, through JobRecord.request.)
        reply = self.refused_submits.get(request) if idempotent else None
        if reply is None:
            reply = answer_client(self, message)
            if idempotent and reply.command == protocol.REJECTED:
                self.refused_submits[request] = reply
                while len(self.refused_submits) > REFUSED_SUBMITS_KEPT:
                    del self.refused_submits[next(iter(self.refused_submits))]
        self._send(route, reply.command, reply.header)

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
        self.sessions[worker] = header.get("session")
        self.last_sent[worker] = now
        info = {k: header.get(k) for k in ("host", "pid", "python", "cloudpickle")}
        heard = header.get("heard")  # None (an older worker): all it was assigned is abandoned
        self._carry_out(
            self.scheduler.worker_ready(
                worker,
                int(header.get("capacity") or 1),
                now,
                info,
                heard=heard if type(heard) is int else None,
            )
        )

    def _forget(self, worker: str) -> None:
        route = self.routes.pop(worker, None)
        if route is not None:
            self.peers.pop(route, None)
            self.unreachable.discard(route)
        self.last_sent.pop(worker, None)
        self.tasks_sent.pop(worker, None)  # stamps start again from 0: lower is always safe
        self.sessions.pop(worker, None)

    # ---- messages out ---------------------------------------------------------------------------

    def _send(self, route: bytes, command: bytes, header: dict, blobs: tuple = ()) -> bool:
        try:
            protocol.send(
                self.socket,
                Message(command, header, list(blobs)),
                self.secret,
                route=route,
                flags=zmq.NOBLOCK,
            )
            self.unreachable.discard(route)
            return True
        except (zmq.Again, zmq.ZMQError) as exc:
            # The peer vanished or its queue is full: never block the loop on one peer. Said once
            # per peer: heartbeats to a dead one fail until it is declared dead.
            (log.debug if route in self.unreachable else log.warning)(
                "could not send to peer %s: %s", _peer_name(route), exc
            )
            self.unreachable.add(route)
            return False

    def _send_to_worker(self, worker: str, command: bytes, header: dict, blobs: tuple = ()) -> bool:
        route = self.routes.get(worker)
        if route is None:
            return False
        if command != protocol.TASK:
            # The highest TASK number sent to it so far: once the worker has heard of it, a TASK
            # it does not run was lost, not still on its way (Scheduler.worker_report).
            header = {**header, "assigned": self.tasks_sent.get(worker, 0)}
        sent = self._send(route, command, header, blobs)
        if sent or command == protocol.HEARTBEAT:
            self.last_sent[worker] = time.monotonic()  # a failed heartbeat waits its turn too
        return sent

    def _send_heartbeats(self, now: float) -> None:
        for worker in list(self.scheduler.workers):
            if now - self.last_sent.get(worker, 0.0) >= self.settings.heartbeat_interval:
                self._send_to_worker(worker, protocol.HEARTBEAT, {})

    # ---- the journal ----------------------------------------------------------------------------

    def _journal(self, record: dict) -> None:
        if self.journal is not None:
            self.journal.append(record)
            if self.monitor is not None:
                self.monitor.journal_written()

    def _journal_published(self, outcome: Published) -> None:
        if self.journal is None:
            return
        state = self.scheduler.jobs.get(outcome.job)
        task = state.task(outcome.task) if state else None
        if task is not None:
            self._journal(
                {
                    "type": "published",
                    "job": outcome.job,
                    "task": outcome.task,
                    "attempt": outcome.attempt,
                    "result": task.result,
                }
            )
            # Not synced: lost with a power cut, the task runs again (tasks are idempotent).

    def _compact(self, journal: Journal) -> None:
        """Rewrite the journal as the running jobs stand and the last finished ones, so that it
        does not grow without end on a coordinator that runs for months."""
        records, _ = journal.read()
        journal.rewrite(
            journal_records.compacted(journal_records.fold(records), self.finished_jobs_kept)
        )

    def _recover(self, journal: Journal) -> None:
        """Replay the journal: finished jobs become history, running ones continue where they
        were (published outputs are kept, attempts that were running run again). Then the
        journal is rewritten compacted, without the damaged tail it may have had."""
        started = time.monotonic()
        records, damage = journal.read()
        if damage is not None:
            log.warning("journal: %s; replayed the %d records before it", damage, len(records))
        histories = journal_records.fold(records)
        now, wall = time.monotonic(), time.time()
        instructions: list = []
        lost: list[JobRecord] = []
        for history in histories.values():
            if history.ended is not None:
                record = jobs.from_summary(history.ended, now, wall)
                record.settled = history.cleaned
                self.jobs[record.id] = record
                if not history.cleaned and record.staging and record.shuffle_dir:
                    # It ended just before the restart: its files may still be there.
                    self.committer.clean_up(record, record.status is JobStatus.SUCCEEDED)
                else:
                    record.settled = True
                continue
            if history.submitted is None:
                continue
            record = jobs.from_submitted(history.submitted, now, wall)
            self.jobs[record.id] = record
            vanished = jobs.reclaim_job_dirs(record)
            submission = record.submission
            instructions += self.scheduler.restore_job(
                record.id,
                submission.split_descriptions,
                submission.num_reducers,
                submission.max_attempts,
                submission.max_losses,
                history.attempts,
                {task: result for task, (_, result) in history.published.items()},
                now,
                map_splits=submission.splits,
                cut=submission.cut,
                replanned=history.replanned,
                **submission.skipping(),
            )
            if vanished and not history.committing:
                lost.append(record)
        journal.rewrite(journal_records.compacted(histories, self.finished_jobs_kept))
        self.committer.drain()  # jobs that ended just before the restart: cleaned up by now
        self._take_outcomes()
        for record in lost:
            instructions += self.scheduler.fail_job(record.id)
            self._end_job(
                record,
                JobStatus.FAILED,
                MapReduceError(
                    f"job {record.id} failed: its staging directory '{record.staging}' "
                    f"vanished while the coordinator was down, so the work done so far is "
                    f"lost. No output was committed; submit the job again."
                ),
            )
        running = sum(r.running for r in self.jobs.values())
        if self.jobs:
            log.warning(
                "journal: resumed %d running job(s) and %d finished, from %d records in %.2f s",
                running,
                len(self.jobs) - running,
                len(records),
                time.monotonic() - started,
            )
        self._carry_out(instructions)

    # ---- instructions ---------------------------------------------------------------------------

    def _carry_out(self, instructions: list) -> None:
        """Carry out the scheduler's instructions in order. One that raises (a bug, an odd
        filesystem) fails its own job with a paragraph; the others are still carried out."""
        pending = list(instructions)
        self.changes += bool(pending)
        while pending:
            instruction = pending.pop(0)
            try:
                pending.extend(self._carry_out_one(instruction))
            except LeadershipLost:
                raise
            except Exception as exc:
                pending.extend(self._instruction_failed(instruction, exc))

    def _instruction_failed(self, instruction, exc: Exception) -> list:
        task = getattr(instruction, "task", None)
        fields = about(
            getattr(instruction, "job", None),
            getattr(task, "id", task),
            getattr(instruction, "attempt", None),
            getattr(instruction, "worker", None),
        )
        log.exception(
            "could not carry out %s (job %s, task %s, attempt %s, worker %s)",
            type(instruction).__name__,
            *fields.values(),
            extra=fields,
        )
        record = self.jobs.get(str(getattr(instruction, "job", "")))
        if record is None or not record.running:
            return []
        out = self.scheduler.fail_job(record.id)
        self._end_job(
            record,
            JobStatus.FAILED,
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
            self.committer.publish(
                self.jobs[instruction.job], instruction.task, instruction.attempt
            )
            return []
        if isinstance(instruction, CommitJob):
            record = self.jobs[instruction.job]
            self._journal({"type": "committing", "job": record.id})
            if self.journal is not None:
                self.journal.sync()
            self.committer.commit(record, self.scheduler.jobs[record.id].pieces_by_part())
            return []
        if isinstance(instruction, FailJob):
            self._fail(self.jobs[instruction.job], instruction.task)
            return []
        if isinstance(instruction, ReplanTask):
            # Before the pieces' TASKs go out (their Assigns follow): a restart cuts the task
            # again into the same pieces (Scheduler.restore_job), which later records are about.
            self._journal(
                {"type": "replanned", "job": instruction.job, "task": instruction.task.id}
            )
            last = instruction.task.attempts[-1] if instruction.task.attempts else None
            log.info(
                "%s %s lost %d attempt(s) (the last: attempt %s on %s: %s); re-planned into %d "
                "smaller tasks: %s",
                instruction.job,
                instruction.task.id,
                instruction.task.losses,
                last and last.number,
                last and last.worker,
                (instruction.task.last_error or {}).get("message"),
                len(instruction.pieces),
                ", ".join(f"{piece.id} ({piece.where})" for piece in instruction.pieces),
                extra=about(
                    instruction.job, instruction.task.id, last and last.number, last and last.worker
                ),
            )
            return []
        raise TypeError(f"unknown instruction {instruction!r}")

    def _assign(self, assign: Assign) -> list:
        """Send the TASK. One that cannot leave (the worker's connection is down for a moment) is
        as good as lost on the way: the worker's next reports show it missing and it is sent
        again; a worker that stays away is declared dead when its liveness runs out."""
        record = self.jobs[assign.job]
        task = assign.task
        # Only a reduce reads the map outputs: a map's TASK does not look at every map task.
        map_results = (
            [m.result for m in self.scheduler.jobs[record.id].map_tasks]
            if task.kind == "reduce"
            else []
        )
        header = task_header(
            record,
            task.kind,
            task.index,
            task.id,
            assign.attempt,
            map_results,
            split=task.split,
            skip=task.skip,
        )
        header["seq"] = assign.seq
        self.tasks_sent[assign.worker] = max(self.tasks_sent.get(assign.worker, 0), assign.seq)
        key = (record.id, task.id, assign.attempt)
        again = key in self._started
        if not again:
            # Before the TASK goes out: after a restart, no attempt number is handed out twice.
            self._journal(
                {
                    "type": "assigned",
                    "job": record.id,
                    "task": task.id,
                    "attempt": assign.attempt,
                    "worker": assign.worker,
                }
            )
            if self.journal is not None:
                self.journal.write_through()  # with the records before it, in one write
        sent = self._send_to_worker(
            assign.worker, protocol.TASK, header, (record.submission.job_code,)
        )
        self._started.setdefault(key, time.monotonic())
        if sent and not again and not log.isEnabledFor(logging.INFO):
            return []  # the usual case, with nothing to log at this level
        fields = about(record.id, task.id, assign.attempt, assign.worker)
        if again:
            log.warning(
                "%s %s attempt %s sent again to %s (its TASK was lost on the way)",
                record.id,
                task.id,
                assign.attempt,
                assign.worker,
                extra=fields,
            )
        else:
            log.info(
                "%s %s attempt %s assigned to %s",
                record.id,
                task.id,
                assign.attempt,
                assign.worker,
                extra=fields,
            )
        if not sent:
            log.info(
                "%s %s attempt %s: the TASK could not leave for %s yet; it is sent again later",
                record.id,
                task.id,
                assign.attempt,
                assign.worker,
                extra=fields,
            )
        return []

    # ---- the committer's outcomes ---------------------------------------------------------------

    def _take_outcomes(self) -> None:
        for outcome in self.committer.outcomes():
            now = time.monotonic()
            self.changes += 1
            if isinstance(outcome, Published):
                self._journal_published(outcome)
                self._carry_out(self.scheduler.task_published(outcome.job, outcome.task, now))
            elif isinstance(outcome, PublishFailed):
                self._carry_out(
                    self.scheduler.publish_failed(outcome.job, outcome.task, outcome.error, now)
                )
            elif isinstance(outcome, Committed):
                # Held over the record's update: whoever catches SIGINT or SIGTERM afterwards
                # finds the job either committed or not, never in between.
                with interrupts.held():
                    self.scheduler.job_committed(outcome.job)
                    self._end_job(self.jobs[outcome.job], JobStatus.SUCCEEDED, None)
            elif isinstance(outcome, CommitFailed):
                self._carry_out(self.scheduler.fail_job(outcome.job))
                self._end_job(self.jobs[outcome.job], JobStatus.FAILED, outcome.error)
            elif isinstance(outcome, CleanedUp) and outcome.job in self.jobs:
                self._journal({"type": "cleaned", "job": outcome.job})
                self.jobs[outcome.job].settled = True
                self._forget_old_jobs()

    def _fail(self, record: JobRecord, task) -> None:
        self._end_job(record, JobStatus.FAILED, jobs.task_failure(record, task))

    def _end_job(self, record: JobRecord, status: JobStatus, error: MapReduceError | None) -> None:
        now = time.monotonic()
        record.counters = jobs.job_counters(self.scheduler, record)
        record.final_progress = jobs.progress(self.scheduler, record, now)
        record.status, record.error, record.finished = status, error, now
        record.final_progress["elapsed"] = now - record.submitted
        record.finished_at = time.time()
        self._journal(jobs.summary(record))
        if self.journal is not None:
            self.journal.sync()  # ended before its files go: a restart does not resume it
        self.committer.clean_up(record, keep_output=status is JobStatus.SUCCEEDED)
        self._started = {key: when for key, when in self._started.items() if key[0] != record.id}
        if self.monitor is not None:
            self.monitor.job_ended(self, record)
        log.info(
            "%s %s in %.2f s",
            record.id,
            status.value,
            now - record.submitted,
            extra=about(record.id),
        )

    def _forget_old_jobs(self) -> None:
        """A long-lived coordinator keeps the summaries of the last finished jobs, not their tasks."""
        finished = [r for r in self.jobs.values() if r.over]
        for record in finished:
            self.scheduler.forget_job(record.id)
        for record in finished[: max(0, len(finished) - self.finished_jobs_kept)]:
            del self.jobs[record.id]


_NOBLOCK = int(zmq.NOBLOCK)


def _receive_frames(sock) -> list:
    """One message's frames (zmq.Frame: the last one's metadata names the sender's key), as
    recv_multipart(NOBLOCK, copy=False) would, reading each frame's `more` instead of asking
    the socket (and with plain int flags: pyzmq's enum arithmetic cost more than the receive)."""
    frame = sock.recv(_NOBLOCK, copy=False)
    frames = [frame]
    while frame.more:
        frame = sock.recv(_NOBLOCK, copy=False)
        frames.append(frame)
    return frames


def _log_lost_attempts(worker, why: str) -> None:
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


def _peer_name(route: bytes) -> str:
    """A routing id for the log: workers' and clients' are readable (w:..., c:...)."""
    text = route.decode("utf-8", "replace")
    return text if text.isprintable() and text[:2] in ("w:", "c:") else route.hex()


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
