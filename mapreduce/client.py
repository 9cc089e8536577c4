"""Talking to a long-lived coordinator: `submit`, `status`, cancel.

Every request gets a reply carrying the request's id. A request whose reply is slow to come is sent
again, on a fresh socket, with the same id (a reply lost with a cut connection costs a second, not
the job): WATCH, STATUS and CANCEL_JOB are harmless to repeat, and the coordinator remembers which
job each SUBMIT id started, so a repeated SUBMIT never starts a second job. No reply within the
timeout means the coordinator is not there (or not reachable), which is reported plainly instead
of hanging; `submit`, once its job is accepted, keeps following it through such silences (a
coordinator restarting) for a generous while, with backoff. A coordinator that refuses this client's handshake (CURVE keys missing on one
side, or a key it does not allow) answers nothing at all, so the client watches its own socket's
handshakes and says why at once. The client polls its job's state (WATCH) rather than waiting for pushed
events, so nothing is lost when either side is slow.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import signal
import socket as pysocket
import time
from dataclasses import dataclass, replace

import zmq

from . import defaults, interrupts, protocol, security, sidefiles, storage
from .election import Addresses
from .errors import MapReduceError, interrupted
from .inputs import check_split_size
from .jobspec import Job
from .prepare import JobOptions, prepare_submission
from .progress import ProgressReporter
from .protocol import Message

log = logging.getLogger("mapreduce.client")

DEFAULT_TIMEOUT_S = defaults.REQUEST_TIMEOUT_S
WATCH_INTERVAL_S = 0.2
REQUEST_RESEND_S = 1.0  # a request unanswered this long is sent again (within the timeout)
FOLLOW_BACKOFF_MIN_S = 0.5  # a followed job's coordinator silent: WATCH again after this...
FOLLOW_BACKOFF_MAX_S = 10.0  # ...doubling up to this...
FOLLOW_PATIENCE_S = 900.0  # ...until it has been silent this long
WORKERS_POLL_S = 0.1  # while submit waits for the workers of a cluster that has none yet
WORKERS_SETTLE_S = 0.5  # ...and for their number to stay the same this long


class CoordinatorUnreachable(MapReduceError):
    pass


class CoordinatorRefused(CoordinatorUnreachable):
    """The coordinator refused this client's handshake: final, not worth retrying."""


# Handshake events of the client's own socket: a refusal is final (ZeroMQ does not retry it); a
# handshake that breaks off (NO_DETAIL) is retried, and only explains a timeout.
_HANDSHAKE_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class JobFailed(MapReduceError):
    def __init__(self, paragraph: str, exit_code: int = 1):
        super().__init__(paragraph)
        self.exit_code = exit_code


class CoordinatorClient:
    def __init__(
        self,
        address: str | None,
        timeout: float = DEFAULT_TIMEOUT_S,
        secret: bytes | None = None,
        keys_dir: str | None = None,
        insecure: bool = False,
        elect: str | None = None,
    ):
        # One address, a comma-separated list (tried in turn until one answers: standbys do
        # not listen), or the leader of an election, looked up again after every silence.
        self.addresses = Addresses(address, elect)
        self.insecure = insecure
        self.given_keys = keys_dir  # an elected leader elsewhere needs keys given, not ours
        # With no keys given: this user's own key set, or none at all with --insecure.
        self.keys_dir = security.keys_for(keys_dir, insecure, self.addresses.all_static(), "client")
        self.address = self.addresses.describe()
        self.timeout = timeout
        self.secret = secret
        self.context = zmq.Context()
        self._sockets: tuple[zmq.Socket, zmq.Socket] | None = None  # (DEALER, its monitor)
        # Unique to this client: request ids (a SUBMIT's makes it idempotent) and the routing id,
        # the same on every socket, so a reconnecting client is the same peer to the coordinator.
        self.token = f"{pysocket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.ids = itertools.count(1)
        self._open()

    def _open(self) -> tuple[zmq.Socket, zmq.Socket]:
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, defaults.MAX_MESSAGE_BYTES)
        socket.setsockopt(zmq.ROUTING_ID, f"c:{self.token}".encode()[:255])
        if self.keys_dir:
            security.secure_client(socket, self.keys_dir, "client")
        self._sockets = socket, socket.get_monitor_socket(_HANDSHAKE_EVENTS)
        address = self.addresses.current(wait=REQUEST_RESEND_S)
        if address is None:  # no leader elected yet: this request goes nowhere, and is retried
            address = "inproc://no-leader-yet"
        elif self.addresses.election is not None:
            security.require_keys_for(address, self.given_keys, self.insecure, "client")
            self.address = address
        try:
            socket.connect(address)
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise CoordinatorUnreachable(
                f"'{address}' is not a coordinator address ({exc}); use the form tcp://HOST:PORT."
            ) from None
        return self._sockets

    def _close_sockets(self) -> None:
        if self._sockets is not None:
            socket, handshakes = self._sockets
            socket.disable_monitor()
            handshakes.close(0)
            socket.close(0)
            self._sockets = None

    def close(self) -> None:
        self._close_sockets()
        self.context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, command: bytes, header: dict, blobs: tuple = ()) -> Message:
        """Send a request and return its reply; sent again (same id, fresh socket) every
        REQUEST_RESEND_S without one, until the timeout (CoordinatorUnreachable)."""
        request_id = f"{self.token}-{next(self.ids)}"
        message = Message(command, {**header, "request": request_id}, list(blobs))
        deadline = time.monotonic() + self.timeout
        broken_off = False
        while True:
            # After a send that went unanswered its socket is discarded (Lazy Pirate): whatever
            # it still queues goes with it, and a reply to it is no longer awaited.
            socket, _ = self._sockets or self._open()
            protocol.send(socket, message, self.secret)
            resend_at = min(deadline, time.monotonic() + REQUEST_RESEND_S)
            reply, broke = self._await_reply(request_id, resend_at)
            broken_off = broken_off or broke
            if reply is not None:
                return reply
            self._close_sockets()
            self.addresses.failed()  # the next time: the next address, or the leader now
            if time.monotonic() >= deadline:
                raise CoordinatorUnreachable(self._no_answer(broken_off))

    def _await_reply(self, request_id: str, until: float) -> tuple[Message | None, bool]:
        """The reply to `request_id` if it comes before `until`, and whether a handshake broke
        off meanwhile; raises CoordinatorRefused when the coordinator refused the handshake."""
        assert self._sockets is not None
        socket, handshakes = self._sockets
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(handshakes, zmq.POLLIN)
        broken_off = False
        while True:
            remaining = until - time.monotonic()
            events = dict(poller.poll(int(remaining * 1000))) if remaining > 0 else {}
            if handshakes in events:
                event = security.recv_monitor_event(handshakes)
                if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                    broken_off = True
                    continue
                self._close_sockets()
                raise CoordinatorRefused(self._refusal(event["event"], event["value"]))
            if socket not in events:
                return None, broken_off
            reply = protocol.receive(socket.recv_multipart(), self.secret)
            if reply is not None and reply.header.get("request") == request_id:
                return reply, broken_off  # older replies (to requests given up on) are skipped

    def _refusal(self, event: int, value: int) -> str:
        """What to tell the user when the coordinator refused this client's handshake."""
        return security.handshake_refusal(self.address, event, value, self.keys_dir, "client")

    def _no_answer(self, broken_off: bool) -> str:
        head = f"no answer from a coordinator at {self.address} within {self.timeout:g} s."
        if broken_off and self.keys_dir:
            return f"{head} " + security.handshakes_broke_off(self.address, self.keys_dir, "client")
        keys = (
            "Does it accept this client's key (its KEYS/authorized/clients/ must hold "
            f"{self.keys_dir}/client.key)?"
            if self.keys_dir
            else "A coordinator that uses keys (all do unless started with --insecure) "
            "silently drops a client without the right key: leave out --insecure, or pass "
            "--keys KEYS, the directory from `mapreduce keys generate`."
        )
        return (
            f"{head} Is `mapreduce coordinator --bind ...` running there, and is the address "
            f"right? {keys}"
        )

    def submit(self, submission) -> str:
        header, code = submission.to_wire()
        reply = self.request(
            protocol.SUBMIT, {"submission": header, **protocol.runtime_versions()}, (code,)
        )
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
        reply = self.request(protocol.STATUS, {})
        if reply.command == protocol.REJECTED:  # e.g. this key may not read status (its role)
            raise MapReduceError(reply.header.get("error") or "the coordinator refused")
        return reply.header


@dataclass
class SubmitOptions(JobOptions):
    """How `mapreduce submit` ships a job: the options every runner has (JobOptions) and its
    own, with the defaults of `defaults.py`."""

    timeout: float = DEFAULT_TIMEOUT_S  # seconds to wait for the coordinator to answer
    elect: str | None = None  # etcd://HOST:PORT[/NAME]: follow the elected coordinator
    keys_dir: str | None = None
    insecure: bool = False
    # With no worker registered yet, wait this long for some before planning the splits.
    wait_for_workers: float = defaults.SUBMIT_WAIT_FOR_WORKERS_S


def submit_job(
    job_ref: str | Job,
    inputs: list[str],
    output_dir: str,
    coordinator: str | None,
    options: SubmitOptions | None = None,
    **settings,
) -> dict:
    """Ship a job (each step of a multi-step job in turn) to a coordinator and block until it
    ends; returns the final state or raises. Settings are SubmitOptions' fields, given as an
    object or by name (`submit_job(job, inputs, out, address, reducers=2)`).

    Paths are made absolute here, against this process's working directory, before they are sent:
    the coordinator and workers resolve nothing relative to their own."""
    from .steps import load_steps, run_steps

    try:
        options = replace(options or SubmitOptions(), **settings)
    except TypeError as exc:
        raise TypeError(f"submit_job: {exc}; the settings are SubmitOptions' fields") from None
    check_split_size(options.split_size, options.min_split_size)
    started = time.monotonic()
    absolute_inputs = [storage.absolute(i) for i in inputs]  # URIs stay as they are
    progress = ProgressReporter(quiet=options.quiet)
    sidefiles.use_py_files_here(options.py_files)  # the job module may import them
    if isinstance(job_ref, str):
        steps = load_steps(job_ref, options.params)
    else:
        steps = [job_ref]
    sidefiles.attach(steps, options.files, options.archives, options.py_files)
    previous_term = signal.signal(signal.SIGTERM, interrupts.raise_terminated)
    try:
        with CoordinatorClient(
            coordinator,
            options.timeout,
            keys_dir=options.keys_dir,
            insecure=options.insecure,
            elect=options.elect,
        ) as client:
            # Like `run`, spread the input over the task slots there are (at least two), and
            # default to one reducer per slot.
            slots = task_slots(client, options.wait_for_workers)

            def submit_one(job, step_inputs, step_output, step_format, step_overwrite):
                step_options = replace(
                    options,
                    output_format=step_format,
                    overwrite=step_overwrite,
                    reducers=slots if options.reducers is None else options.reducers,
                )
                submission = prepare_submission(
                    job, step_inputs, step_output, step_options, workers=slots, warn=progress.warn
                )
                return follow(
                    client, lambda: client.submit(submission), progress, started, step_output
                )

            return run_steps(
                steps,
                absolute_inputs,
                storage.absolute(output_dir),
                submit_one,
                overwrite=options.overwrite,
                output_format=options.output_format,
            )
    finally:
        signal.signal(signal.SIGTERM, previous_term)


def watch_patiently(
    client: CoordinatorClient, job_id: str, patience: float = FOLLOW_PATIENCE_S
) -> dict:
    """WATCH the job, asking again with backoff while its coordinator is silent (restarting, or
    the network between is down) for up to `patience` seconds; then one paragraph saying so. A
    refused handshake and an unknown job are answers, not silence: they end it at once."""
    started = time.monotonic()
    backoff = FOLLOW_BACKOFF_MIN_S
    while True:
        try:
            return client.watch(job_id)
        except CoordinatorRefused:
            raise
        except CoordinatorUnreachable as exc:
            silent = time.monotonic() - started
            if silent + backoff > patience:
                raise CoordinatorUnreachable(
                    f"lost the coordinator at {client.address} while following job {job_id}: "
                    f"it has not answered for {silent:.0f} s, retried with backoff. The job may "
                    f"still be running there (its output is committed only if it succeeds): "
                    f"`mapreduce status --coordinator {client.address}` shows it once the "
                    f"coordinator answers again. The last attempt said: {exc}"
                ) from None
            if backoff == FOLLOW_BACKOFF_MIN_S:
                log.warning(
                    "the coordinator at %s does not answer; still following job %s (giving up "
                    "after %.0f s of silence)",
                    client.address,
                    job_id,
                    patience,
                )
            time.sleep(backoff)
            backoff = min(backoff * 2, FOLLOW_BACKOFF_MAX_S)


def task_slots(client: CoordinatorClient, wait: float = defaults.SUBMIT_WAIT_FOR_WORKERS_S) -> int:
    """The task slots of the workers registered with the coordinator, at least two: what `submit`
    plans splits for, as `run` does for its workers. Workers started together with the submit
    are often still starting: while none has registered, wait up to `wait` seconds for some, and
    for their number to stop growing, so 3 fresh workers do not get the 2 tasks of an empty
    cluster. A cluster with workers is answered at once."""

    def registered() -> int:
        return sum(w.get("capacity", 1) for w in client.status()["workers"])

    slots = registered()
    if slots:
        return max(2, slots)
    deadline = steady_since = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(WORKERS_POLL_S)
        now_slots = registered()
        if now_slots != slots:
            slots, steady_since = now_slots, time.monotonic()
        elif slots and time.monotonic() - steady_since >= WORKERS_SETTLE_S:
            break
    return max(2, slots)


def follow(
    client: CoordinatorClient, submit, progress: ProgressReporter, started: float, output_dir: str
) -> dict:
    """Submit a job and watch it to its end; Ctrl-C or SIGTERM cancels it on the coordinator,
    unless it has already committed (the message says which)."""
    job_id = None
    try:
        # The coordinator starts a job's tasks before it answers, so a signal landing while the
        # answer is on its way would leave the job running with no id to cancel it by: signals
        # are held until the id is assigned (at most one request timeout), then raised here.
        with interrupts.held():
            job_id = submit()
        state = watch_patiently(client, job_id)
        while state["status"] in ("queued", "running"):
            progress.update(state["progress"])
            time.sleep(WATCH_INTERVAL_S)
            state = watch_patiently(client, job_id)
    except (KeyboardInterrupt, interrupts.Terminated) as exc:
        progress.clear()
        committed = False
        if job_id is not None:
            committed = client.cancel(job_id).get("status") == "succeeded"
        raise interrupted(
            "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)",
            output_dir,
            committed,
        ) from None
    progress.clear()
    if state["status"] != "succeeded":
        raise JobFailed(
            state.get("error") or f"job {job_id} {state['status']}", state.get("exit_code") or 1
        )
    state["progress"]["elapsed"] = time.monotonic() - started
    progress.summary(state["progress"], state["counters"], output_dir)
    return state
