"""Talking to a long-lived coordinator: `submit`, `status`, cancel.

Every request gets exactly one reply carrying the request's id; a reply that does not come within
the timeout means the coordinator is not there (or not reachable), which is reported plainly
instead of hanging. The client polls its job's state (WATCH) rather than waiting for pushed
events, so nothing is lost when either side is slow.
"""

from __future__ import annotations

import itertools
import signal
import time

import zmq

from . import defaults, protocol, security, storage
from .errors import JobCancelledError, MapReduceError
from .local import prepare_submission
from .progress import ProgressReporter
from .protocol import Message
from .splits import check_split_size

DEFAULT_TIMEOUT_S = 5.0
WATCH_INTERVAL_S = 0.2


class CoordinatorUnreachable(MapReduceError):
    pass


class JobFailed(MapReduceError):
    def __init__(self, paragraph: str, exit_code: int = 1):
        super().__init__(paragraph)
        self.exit_code = exit_code


class CoordinatorClient:
    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT_S, secret: bytes | None = None,
                 keys_dir: str | None = None, insecure: bool = False):
        security.require_keys_for(address, keys_dir, insecure, "client")
        self.keys_dir = keys_dir
        self.address = address
        self.timeout = timeout
        self.secret = secret
        self.context = zmq.Context()
        self.socket = None
        self.ids = itertools.count(1)
        self._open()

    def _open(self) -> None:
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, defaults.MAX_MESSAGE_BYTES)
        if self.keys_dir:
            security.secure_client(self.socket, self.keys_dir, "client")
        try:
            self.socket.connect(self.address)
        except zmq.ZMQError as exc:
            raise CoordinatorUnreachable(f"'{self.address}' is not a coordinator address ({exc}); "
                                         f"use the form tcp://HOST:PORT.") from None

    def close(self) -> None:
        self.socket.close(0)
        self.context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, command: bytes, header: dict, blobs: tuple = ()) -> Message:
        request_id = next(self.ids)
        self.socket.send_multipart(protocol.encode(
            Message(command, {**header, "request": request_id}, list(blobs)), self.secret))
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(remaining * 1000, zmq.POLLIN):
                # Lazy Pirate: a socket with an unanswered request is discarded, not reused.
                self.socket.close(0)
                self._open()
                raise CoordinatorUnreachable(
                    f"no answer from a coordinator at {self.address} within {self.timeout:g} s. "
                    f"Is `mapreduce coordinator --bind ...` running there, is the address right"
                    f"{', and does it accept this client key' if self.keys_dir else ''}?")
            reply = protocol.decode(self.socket.recv_multipart(), self.secret)
            if reply.header.get("request") == request_id:
                return reply           # older replies (to requests that timed out) are skipped

    def submit(self, submission) -> str:
        header, code = submission.to_wire()
        reply = self.request(protocol.SUBMIT, {"submission": header, **protocol.runtime_versions()},
                             (code,))
        if reply.command == protocol.REJECTED:
            raise JobFailed(reply.header.get("error") or "the coordinator refused the job")
        return reply.header["job"]

    def watch(self, job_id: str) -> dict:
        return self._job_request(protocol.WATCH, job_id)

    def cancel(self, job_id: str) -> dict:
        return self._job_request(protocol.CANCEL_JOB, job_id)

    def _job_request(self, command: bytes, job_id: str) -> dict:
        reply = self.request(command, {"job": job_id})
        if reply.command == protocol.REJECTED:
            raise JobFailed(reply.header.get("error") or "unknown job")
        return reply.header

    def status(self) -> dict:
        return self.request(protocol.STATUS, {}).header


def submit_job(job_ref: str, inputs: list[str], output_dir: str, coordinator: str, *,
               reducers: int | None = None, split_size: int | None = None,
               min_split_size: int = defaults.MIN_SPLIT_SIZE_BYTES, overwrite: bool = False,
               max_attempts: int | None = None, quiet: bool = True, timeout: float = DEFAULT_TIMEOUT_S,
               keys_dir: str | None = None, insecure: bool = False, params: dict | None = None,
               output_format: str = "text", skip_bad_records: bool = False,
               skip_binary: bool = False) -> dict:
    """Ship a job (each step of a multi-step job in turn) to a coordinator and block until it
    ends; returns the final state or raises.

    Paths are made absolute here, against this process's working directory, before they are sent:
    the coordinator and workers resolve nothing relative to their own."""
    from .steps import load_steps, run_steps
    check_split_size(split_size, min_split_size)
    started = time.monotonic()
    absolute_inputs = [storage.absolute(i) for i in inputs]      # URIs stay as they are
    progress = ProgressReporter(quiet=quiet)
    steps = load_steps(job_ref, params)
    with CoordinatorClient(coordinator, timeout, keys_dir=keys_dir, insecure=insecure) as client:
        # Like `run`, spread the input over the task slots there are (at least two), and default
        # to one reducer per slot.
        slots = max(2, sum(w.get("capacity", 1) for w in client.status()["workers"]))

        def submit_one(job, step_inputs, step_output, step_format, step_overwrite):
            submission = prepare_submission(job, step_inputs, step_output, workers=slots,
                                            reducers=slots if reducers is None else reducers,
                                            split_size=split_size,
                                            overwrite=step_overwrite,
                                            max_attempts=max_attempts or defaults.MAX_ATTEMPTS,
                                            output_format=step_format,
                                            skip_bad_records=skip_bad_records,
                                            skip_binary=skip_binary, warn=progress.warn)
            return _follow(client, lambda: client.submit(submission), progress, started,
                           step_output)

        return run_steps(steps, absolute_inputs, storage.absolute(output_dir), submit_one,
                         overwrite=overwrite, output_format=output_format)


def _follow(client: CoordinatorClient, submit, progress: ProgressReporter, started: float,
            output_dir: str) -> dict:
    """Submit a job and watch it to its end; Ctrl-C cancels it on the coordinator."""
    job_id = None
    try:
        # The coordinator starts a job's tasks before it answers, so a Ctrl-C landing while the
        # answer is on its way would leave the job running with no id to cancel it by: SIGINT is
        # held until the id is assigned (at most one request timeout), then raised right here.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            job_id = submit()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        state = client.watch(job_id)
        while state["status"] in ("queued", "running"):
            progress.update(state["progress"])
            time.sleep(WATCH_INTERVAL_S)
            state = client.watch(job_id)
    except KeyboardInterrupt:
        progress.clear()
        if job_id is not None:
            client.cancel(job_id)
        raise JobCancelledError(f"interrupted: job {job_id} was cancelled on the coordinator "
                                f"and no output was committed.") from None
    progress.clear()
    if state["status"] != "succeeded":
        raise JobFailed(state.get("error") or f"job {job_id} {state['status']}",
                        state.get("exit_code") or 1)
    state["progress"]["elapsed"] = time.monotonic() - started
    progress.summary(state["progress"], state["counters"], output_dir)
    return state
