"""The handling of clients' requests (SUBMIT, WATCH, CANCEL_JOB, STATUS) and the job API
behind them.

`ClientService` accepts a job (checked again: a coordinator trusts no client; journalled before
the client is told its id), cancels one, and says how jobs stand. `answer_client` turns one
request into its one reply; a rejected submission is a REJECTED reply with one paragraph, never
an error. A SUBMIT sent again under the same request id gets the answer the first copy got.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from .. import commit, protocol
from ..election import LeadershipLost
from ..errors import MapReduceError, ProtocolError
from ..logformat import about
from ..protocol import Message
from . import jobs, snapshot
from . import journal as journal_records
from .executor import Executor
from .jobs import JobRecord, JobStatus
from .state import CoordinatorState
from .submission import JobSubmission, check_allowed_paths

log = logging.getLogger("mapreduce.coordinator")

REFUSED_SUBMITS_KEPT = 1000  # refused SUBMITs remembered by request id, so a copy is refused too


class ClientService:
    def __init__(self, state: CoordinatorState, executor: Executor):
        self.state = state
        self.executor = executor
        self.refused_submits: dict[str, Message] = {}  # request id -> REJECTED, oldest first

    def submit(
        self, submission: JobSubmission, request: str | None = None, now: float | None = None
    ) -> str:
        """Accept a job (checked again: a coordinator trusts no client) and start it; returns its
        id. A SUBMIT re-sent with the same request id returns the job it started."""
        if request is not None:
            for record in self.state.jobs.values():
                if record.request == request:
                    return record.id
        check_allowed_paths(submission, self.state.allowed_paths)
        commit.check_job_paths(
            submission.input_paths(),
            submission.output_dir,
            self.state.work_dir,
            work_dir_label="the coordinator's work directory",
        )
        commit.check_output_dir(submission.output_dir, submission.overwrite)
        jobs.check_claims(self.state.jobs.values(), submission)
        job_id = jobs.new_job_id()
        staging, shuffle_dir = jobs.create_job_dirs(job_id, submission, self.state.work_dir)
        now = time.monotonic() if now is None else now
        record = JobRecord(job_id, submission, staging, shuffle_dir, now, request=request)
        self.state.jobs[job_id] = record
        header, code = submission.to_wire()
        self.state.journal_record(
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
        self.state.sync_journal()  # the client is told the job id only once a restart keeps it
        self.executor.carry_out(
            self.state.scheduler.add_job(
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
        record = self.state.jobs[job_id]
        if record.running and self.state.scheduler.cancellable(job_id):
            self.executor.carry_out(self.state.scheduler.cancel_job(job_id))
            self.executor.end_job(record, JobStatus.CANCELLED, None)

    def knows(self, job_id: str) -> bool:
        return job_id in self.state.jobs

    def job_state(self, job_id: str) -> dict:
        return jobs.job_state(self.state.scheduler, self.state.jobs[job_id], time.monotonic())

    def status(self) -> dict:
        return snapshot.status_data(self.state, time.monotonic())

    def serve(self, route: bytes, message: Message) -> None:
        """A client's request, answered (SUBMIT, WATCH, CANCEL_JOB, STATUS)."""
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
        self.state.outbox.send(route, reply.command, reply.header)


class JobService(Protocol):
    """What client requests need from the coordinator."""

    def submit(self, submission: JobSubmission, request: str | None = None) -> str: ...

    def cancel(self, job_id: str) -> None: ...

    def knows(self, job_id: str) -> bool: ...

    def job_state(self, job_id: str) -> dict: ...

    def status(self) -> dict: ...


def answer_client(service: JobService, message: Message) -> Message:
    """The one reply to a client's request (SUBMIT, WATCH, CANCEL_JOB, STATUS); it carries the
    request's id. A rejected submission is a REJECTED reply with one paragraph, never an error."""
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
            submission = JobSubmission.from_wire(header.get("submission") or {}, message.blobs[0])
            request = header.get("request")
            job_id = service.submit(submission, request if isinstance(request, str) else None)
        except LeadershipLost:
            raise  # not the leader any more: no answer (the client asks the new one)
        except MapReduceError as exc:
            return Message(protocol.REJECTED, {**reply, "error": exc.paragraph()})
        except Exception as exc:  # a bug or an odd filesystem must not stop the service
            log.exception("could not accept a job")
            return Message(
                protocol.REJECTED,
                {
                    **reply,
                    "error": f"the coordinator could not accept the job: "
                    f"{type(exc).__name__}: {exc}",
                },
            )
        log.info("accepted job %s (%s)", job_id, submission.name, extra=about(job_id))
        return Message(protocol.ACCEPTED, {**reply, "job": job_id})
    if command in (protocol.WATCH, protocol.CANCEL_JOB):
        job_id = str(header.get("job"))
        if not service.knows(job_id):
            return Message(protocol.REJECTED, {**reply, "error": f"no job '{job_id}' here"})
        if command == protocol.CANCEL_JOB:
            log.info("job %s cancelled by a client", job_id, extra=about(job_id))
            service.cancel(job_id)
        return Message(protocol.JOB_STATE, {**reply, **service.job_state(job_id)})
    return Message(protocol.STATUS_REPLY, {**reply, **service.status()})
