"""Talking to a long-lived coordinator: `submit`, `status`, cancel.

Every request gets exactly one reply carrying the request's id; a reply that does not come within
the timeout means the coordinator is not there (or not reachable), which is reported plainly
instead of hanging. A coordinator that refuses this client's handshake (CURVE keys missing on one
side, or a key it does not allow) answers nothing at all, so the client watches its own socket's
handshakes and says why at once. The client polls its job's state (WATCH) rather than waiting for pushed
events, so nothing is lost when either side is slow.
"""

from __future__ import annotations

import itertools
import signal
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import defaults, interrupts, protocol, security, sidefiles, storage
from .errors import MapReduceError
from .inputs import check_split_size
from .jobspec import Job
from .local import interrupted_error, prepare_submission
from .progress import ProgressReporter
from .protocol import Message

DEFAULT_TIMEOUT_S = 5.0
WATCH_INTERVAL_S = 0.2
WORKERS_POLL_S = 0.1  # while submit waits for the workers of a cluster that has none yet
WORKERS_SETTLE_S = 0.5  # ...and for their number to stay the same this long


class CoordinatorUnreachable(MapReduceError):
    pass


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
        address: str,
        timeout: float = DEFAULT_TIMEOUT_S,
        secret: bytes | None = None,
        keys_dir: str | None = None,
        insecure: bool = False,
    ):
        security.require_keys_for(address, keys_dir, insecure, "client")
        self.keys_dir = keys_dir
        self.address = address
        self.timeout = timeout
        self.secret = secret
        self.context = zmq.Context()
        self._sockets: tuple[zmq.Socket, zmq.Socket] | None = None  # (DEALER, its monitor)
        self.ids = itertools.count(1)
        self._open()

    def _open(self) -> tuple[zmq.Socket, zmq.Socket]:
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, defaults.MAX_MESSAGE_BYTES)
        if self.keys_dir:
            security.secure_client(socket, self.keys_dir, "client")
        self._sockets = socket, socket.get_monitor_socket(_HANDSHAKE_EVENTS)
        try:
            socket.connect(self.address)
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise CoordinatorUnreachable(
                f"'{self.address}' is not a coordinator address ({exc}); "
                f"use the form tcp://HOST:PORT."
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
        # After a request that went unanswered its socket was discarded: a new one.
        socket, handshakes = self._sockets or self._open()
        request_id = next(self.ids)
        socket.send_multipart(
            protocol.encode(
                Message(command, {**header, "request": request_id}, list(blobs)), self.secret
            )
        )
        deadline = time.monotonic() + self.timeout
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(handshakes, zmq.POLLIN)
        broken_off = False
        while True:
            remaining = deadline - time.monotonic()
            events = dict(poller.poll(int(remaining * 1000))) if remaining > 0 else {}
            if handshakes in events:
                event = recv_monitor_message(handshakes)
                if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                    broken_off = True
                    continue
                self._close_sockets()
                raise CoordinatorUnreachable(self._refusal(event["event"], event["value"]))
            if socket not in events:
                # Lazy Pirate: a socket with an unanswered request is discarded, not reused (the
                # next request opens a new one).
                self._close_sockets()
                raise CoordinatorUnreachable(self._no_answer(broken_off))
            reply = protocol.decode(socket.recv_multipart(), self.secret)
            if reply.header.get("request") == request_id:
                return reply  # older replies (to requests that timed out) are skipped

    def _refusal(self, event: int, value: int) -> str:
        """What to tell the user when the coordinator refused this client's handshake."""
        head = f"the coordinator at {self.address} refused this client's handshake"
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            return (
                f"{head}: this client's key ({self.keys_dir}/client.key) is not among the keys "
                f"it allows. Add that .key file to the coordinator's KEYS/authorized/ "
                f"directory (it is read again at once), or pass --keys with a directory holding "
                f"an allowed client key."
            )
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH and not self.keys_dir:
            return (
                f"{head}: it uses CURVE keys (it was started with --keys) and this client has "
                f"none. A coordinator using keys silently drops clients without the right key; "
                f"pass --keys KEYS, the directory from `mapreduce keys generate` that holds "
                f"client.key, client.key_secret and the coordinator's coordinator.key."
            )
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return (
                f"{head}: this client uses CURVE keys (--keys) but the coordinator does not (it "
                f"was started without --keys). Leave out --keys, or start the coordinator with "
                f"--keys."
            )
        return (
            f"{head} (ZeroMQ protocol error {value:#x}). Check that both sides use the same keys."
        )

    def _no_answer(self, broken_off: bool) -> str:
        head = f"no answer from a coordinator at {self.address} within {self.timeout:g} s."
        if broken_off and self.keys_dir:
            return (
                f"{head} Every encrypted handshake with it broke off, which is what happens "
                f"when {self.keys_dir}/coordinator.key is not the public key of the coordinator "
                f"at that address: copy that coordinator's coordinator.key into {self.keys_dir}."
            )
        keys = (
            "Does it accept this client's key (its KEYS/authorized/ must hold "
            f"{self.keys_dir}/client.key)?"
            if self.keys_dir
            else "A coordinator that uses CURVE keys (--keys) silently drops a client without the "
            "right key: if it does, pass --keys KEYS, the directory from `mapreduce keys "
            "generate`."
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
        return self.request(protocol.STATUS, {}).header


def submit_job(
    job_ref: str | Job,
    inputs: list[str],
    output_dir: str,
    coordinator: str,
    *,
    reducers: int | None = None,
    split_size: int | None = None,
    min_split_size: int = defaults.MIN_SPLIT_SIZE_BYTES,
    overwrite: bool = False,
    max_attempts: int | None = None,
    quiet: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
    keys_dir: str | None = None,
    insecure: bool = False,
    params: dict | None = None,
    output_format: str = "text",
    skip_bad_records: bool = False,
    max_skipped: int = defaults.MAX_SKIPPED_RECORDS,
    skip_binary: bool = False,
    files: list | None = None,
    archives: list | None = None,
    py_files: list | None = None,
) -> dict:
    """Ship a job (each step of a multi-step job in turn) to a coordinator and block until it
    ends; returns the final state or raises.

    Paths are made absolute here, against this process's working directory, before they are sent:
    the coordinator and workers resolve nothing relative to their own."""
    from .steps import load_steps, run_steps

    check_split_size(split_size, min_split_size)
    started = time.monotonic()
    absolute_inputs = [storage.absolute(i) for i in inputs]  # URIs stay as they are
    progress = ProgressReporter(quiet=quiet)
    sidefiles.use_py_files_here(py_files)  # the job module may import them
    steps = load_steps(job_ref, params) if isinstance(job_ref, str) else [job_ref]
    sidefiles.attach(steps, files, archives, py_files)
    previous_term = signal.signal(signal.SIGTERM, interrupts.raise_terminated)
    try:
        with CoordinatorClient(
            coordinator, timeout, keys_dir=keys_dir, insecure=insecure
        ) as client:
            # Like `run`, spread the input over the task slots there are (at least two), and
            # default to one reducer per slot.
            slots = task_slots(client)

            def submit_one(job, step_inputs, step_output, step_format, step_overwrite):
                submission = prepare_submission(
                    job,
                    step_inputs,
                    step_output,
                    workers=slots,
                    reducers=slots if reducers is None else reducers,
                    split_size=split_size,
                    overwrite=step_overwrite,
                    max_attempts=max_attempts or defaults.MAX_ATTEMPTS,
                    output_format=step_format,
                    skip_bad_records=skip_bad_records,
                    max_skipped=max_skipped,
                    skip_binary=skip_binary,
                    warn=progress.warn,
                )
                return follow(
                    client, lambda: client.submit(submission), progress, started, step_output
                )

            return run_steps(
                steps,
                absolute_inputs,
                storage.absolute(output_dir),
                submit_one,
                overwrite=overwrite,
                output_format=output_format,
            )
    finally:
        signal.signal(signal.SIGTERM, previous_term)


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
        state = client.watch(job_id)
        while state["status"] in ("queued", "running"):
            progress.update(state["progress"])
            time.sleep(WATCH_INTERVAL_S)
            state = client.watch(job_id)
    except (KeyboardInterrupt, interrupts.Terminated) as exc:
        progress.clear()
        committed = False
        if job_id is not None:
            committed = client.cancel(job_id).get("status") == "succeeded"
        raise interrupted_error(
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
