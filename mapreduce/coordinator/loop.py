"""The coordinator's socket loop: one ROUTER socket, polled with a timeout, always heartbeating.

Workers connect with DEALER sockets, register with READY, and are handed task attempts only while
they have a free slot (load balancing by request, never PUSH/PULL). Every message is decoded by
`protocol`; nothing a peer sends is ever unpickled here: job code is routed as opaque bytes.
Each iteration of `poll`: read what arrived (up to a bound), check each sender's role, and hand
each message to its part: a client's to clients.py, a worker's to workers.py; then the
committer's outcomes (outcomes.py), then the timed duties (duties.py: expiry, backups,
heartbeats), then this iteration's publishes to the committer and the journal's flush. The
scheduler decides; executor.py carries out its instructions (TASK and CANCEL out through the
outbox, publishing and committing handed to the `Committer`, its own thread). What the parts
share is one `CoordinatorState` (state.py). Job records and what clients are told live in `jobs`.

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
import time

import zmq

from .. import defaults, protocol, security
from ..errors import ProtocolError
from ..protocol import Message
from ..scheduler import Scheduler, SchedulerSettings
from . import jobs, recovery, snapshot
from .clients import ClientService
from .committer import Committer
from .duties import TimedDuties
from .executor import Executor
from .jobs import JobRecord
from .journal import Journal
from .outbox import Outbox, peer_name
from .outcomes import Outcomes
from .state import CoordinatorState
from .submission import JobSubmission
from .workers import WorkerMessages

log = logging.getLogger("mapreduce.coordinator")

# Messages read in one iteration of the loop at most, before its other duties come round.
MESSAGES_PER_ITERATION = 2000


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
        settings = settings or SchedulerSettings()
        self.secret = secret
        committer = Committer(fence=leadership.confirm if leadership else None)
        self._listened_at = time.monotonic()  # when poll last read the socket
        self._may_send: dict = {}  # (the sender's roles, command) -> may it send that?
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
        self.state = CoordinatorState(
            settings=settings,
            scheduler=Scheduler(settings),
            committer=committer,
            outbox=Outbox(self.socket, secret),
            journal=journal,
            work_dir=work_dir,
            finished_jobs_kept=finished_jobs_kept,
            allowed_paths=list(allowed_paths),
        )
        self.executor = Executor(self.state)
        self.worker_messages = WorkerMessages(self.state, self.executor.carry_out)
        self.clients = ClientService(self.state, self.executor)
        self.outcomes = Outcomes(self.state, self.executor)
        self.duties = TimedDuties(self.state, self.executor.carry_out)
        try:
            self.socket.bind(bind)
        except BaseException:  # the address is taken, say: release what was started above
            self.socket.close(0)
            if self.security:
                self.security.stop()
            self.context.term()
            committer.close()
            raise
        self.address = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.poller = zmq.Poller()
        self.poller.register(self.socket, zmq.POLLIN)
        self.poller.register(committer.fileno(), zmq.POLLIN)
        if journal is not None:
            recovery.recover(self.state, self.executor, self.outcomes, journal)

    # ---- what the parts share, as callers (snapshot, the services, tests) read it --------------

    @property
    def settings(self) -> SchedulerSettings:
        return self.state.settings

    @property
    def scheduler(self) -> Scheduler:
        return self.state.scheduler

    @property
    def jobs(self) -> dict[str, JobRecord]:
        return self.state.jobs

    @property
    def committer(self) -> Committer:
        return self.state.committer

    @property
    def journal(self) -> Journal | None:
        return self.state.journal

    @property
    def work_dir(self) -> str:
        return self.state.work_dir

    @property
    def allowed_paths(self) -> list:
        return self.state.allowed_paths  # --allow-path: where jobs may read and write

    @property
    def monitor(self) -> snapshot.Publisher | None:
        return self.state.monitor  # when a status page is served (web/)

    @monitor.setter
    def monitor(self, publisher: snapshot.Publisher | None) -> None:
        self.state.monitor = publisher

    @property
    def changes(self) -> int:
        return self.state.changes  # messages, outcomes and instructions so far

    @changes.setter
    def changes(self, value: int) -> None:
        self.state.changes = value

    # ---- jobs (the client API) ------------------------------------------------------------------

    def submit(
        self, submission: JobSubmission, request: str | None = None, now: float | None = None
    ) -> str:
        """Accept a job and start it; returns its id (ClientService.submit)."""
        return self.clients.submit(submission, request, now)

    def cancel(self, job_id: str) -> None:
        """Cancel a running job (ClientService.cancel)."""
        self.clients.cancel(job_id)

    def knows(self, job_id: str) -> bool:
        return self.clients.knows(job_id)

    def job(self, job_id: str) -> JobRecord:
        return self.state.jobs[job_id]

    def finished(self, job_id: str) -> bool:
        """The job ended and its staging and shuffle files are cleaned up."""
        return self.state.jobs[job_id].over

    def progress(self, job_id: str) -> dict:
        return jobs.progress(self.state.scheduler, self.state.jobs[job_id], time.monotonic())

    def job_state(self, job_id: str) -> dict:
        return self.clients.job_state(job_id)

    def status(self) -> dict:
        return self.clients.status()

    def workers_exited(self, pids: list, now: float | None = None) -> None:
        """Local worker processes known to have exited (the local pool saw them go): their
        attempts are re-queued now, not after the liveness timeout."""
        self.worker_messages.exited(pids, time.monotonic() if now is None else now)

    # ---- the loop -------------------------------------------------------------------------------

    def poll(self, timeout: float) -> None:
        """Handle whatever arrives within `timeout` seconds (messages, the committer's outcomes),
        then send due heartbeats and let the scheduler act on elapsed time (expire silent
        workers, start backup attempts)."""
        state = self.state
        timeout = min(timeout, state.settings.heartbeat_interval / 2)
        if self.leadership is not None:
            self.leadership.check()
        state.committer.hand_over()  # steps asked for between polls (a cancel, exited workers)
        before_poll = time.monotonic()
        events = dict(self.poller.poll(int(timeout * 1000)))
        if self.leadership is not None:
            # The process may have been stopped while it waited: before acting on anything that
            # came in (acknowledging a result another leader needs), is it still the leader?
            self.leadership.check()
        # Time this loop did not listen: between the last poll and this one, and a poll that
        # overslept (the process was stopped: SIGSTOP, a suspended VM).
        self.duties.not_listened(
            (before_poll - self._listened_at) + max(0.0, time.monotonic() - before_poll - timeout)
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
        self.outcomes.take()
        now = self._listened_at = time.monotonic()
        self.duties.run(now)
        state.committer.hand_over()  # this iteration's publishes, in one go
        if state.journal is not None:
            state.journal.flush()
            if state.journal.needs_compaction():
                recovery.compact(state.journal, state.finished_jobs_kept)
        if state.monitor is not None:
            state.monitor.publish(state)

    def close(self, cancel_running: bool = True) -> int:
        """Stop: cancel the jobs still running (their staging is removed), or, with
        `cancel_running=False` (a service with a journal), leave them for the next start to
        resume. A commit under way finishes first. Releases the committer, the journal, the
        socket, the authenticator and the context, whatever happens on the way. Returns the
        number of jobs left running."""
        try:
            if cancel_running:
                for record in list(self.state.jobs.values()):
                    if record.running:
                        try:
                            self.cancel(record.id)
                        except Exception:
                            log.exception("could not cancel job %s while closing", record.id)
            self.state.committer.drain()
            self.outcomes.take()  # a commit that was under way has ended: record how
            self.state.committer.drain()
            self.outcomes.take()
        finally:
            try:
                self.state.committer.close()
                if self.state.journal is not None:
                    self.state.journal.close()
            finally:
                self.socket.close(0)
                if self.security:
                    self.security.stop()
                self.context.term()
        return sum(record.running for record in self.state.jobs.values())

    def abandon(self) -> None:
        """Let go at once, writing nothing more: the leadership was lost (a newer leader owns
        the journal and the jobs now). Queued commit steps are skipped by the committer's fence."""
        try:
            self.state.committer.close()
            if self.state.journal is not None:
                self.state.journal.abandon()
        finally:
            self.socket.close(0)
            if self.security:
                self.security.stop()
            self.context.term()

    # ---- messages in ----------------------------------------------------------------------------

    def _receive(self, frames: list, roles: str | None = None) -> None:
        if len(frames) < 2:
            return
        route, body = frames[0], frames[1:]
        self.state.changes += 1
        try:
            message = protocol.receive(body, self.secret)
        except ProtocolError as exc:
            log.warning("dropped a message from peer %s: %s", peer_name(route), exc)
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
            if message.command in protocol.CLIENT_COMMANDS:
                self.clients.serve(route, message)
            else:
                self.worker_messages.handle(route, message, time.monotonic())
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Authenticated but malformed (a buggy or hostile peer): drop it, keep serving.
            log.warning(
                "dropped a malformed %r message from peer %s: %s",
                message.command,
                peer_name(route),
                exc,
            )

    def _refuse_role(self, route: bytes, message: Message, roles: str) -> None:
        """A peer whose key's role does not allow what it sent: a client command is answered
        REJECTED, a READY with REFUSE (the worker stops), anything else dropped."""
        reason = security.role_refusal(roles, message.command)
        log.warning(
            "refused a %r message from peer %s: %s", message.command, peer_name(route), reason
        )
        if message.command in protocol.CLIENT_COMMANDS:
            request = message.header.get("request")
            self.state.outbox.send(route, protocol.REJECTED, {"request": request, "error": reason})
        elif message.command == protocol.READY:
            self.state.outbox.send(route, protocol.REFUSE, {"reason": reason})


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
