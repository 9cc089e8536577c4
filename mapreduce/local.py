"""`mapreduce run`: the embedded form of the distributed system.

The same Coordinator and the same worker processes as a cluster, all on this machine: the
coordinator runs in this process, bound to an ipc socket in a private (0700) temporary directory,
and a local pool starts N `python -m mapreduce.worker` processes that connect to it. Frames are
authenticated with a secret shared only with those processes.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, replace

from . import defaults, interrupts, leftovers, sidefiles, storage
from .coordinator import Coordinator, check_work_dir
from .errors import MapReduceError, interrupted
from .inputs import check_split_size
from .interrupts import Terminated
from .jobspec import Job
from .prepare import JobOptions, prepare_submission
from .progress import ProgressReporter
from .scheduler import SchedulerSettings
from .worker.pool import LocalPool

log = logging.getLogger("mapreduce.run")


@dataclass
class RunResult:
    output_dir: str
    counters: dict
    progress: dict


@dataclass
class RunOptions(JobOptions):
    """How `mapreduce run` runs a job: the options every runner has (JobOptions) and its own,
    with the defaults of `defaults.py`."""

    workers: int | None = None  # default: the number of cores
    work_dir: str | None = None  # default: a private temporary directory
    inline: bool = False
    heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL_S
    liveness: int = defaults.HEARTBEAT_LIVENESS
    backup_min_runtime: float = defaults.BACKUP_MIN_RUNTIME_S
    backup_slowdown: float = defaults.BACKUP_SLOWDOWN_FACTOR
    http: str | None = None  # serve the status page on this [HOST:]PORT while the run lasts
    http_token: str | None = None


def run_job(
    job_ref: str | Job | list[Job],
    inputs: list[str],
    output_dir: str,
    options: RunOptions | None = None,
    *,
    progress: ProgressReporter | None = None,
    **settings,
) -> RunResult:
    """Run a job (each step of a multi-step job in turn) on this machine; returns when the output
    is committed, raises MapReduceError (nothing committed) otherwise. Settings are RunOptions'
    fields, given as an object or by name (`run_job(job, inputs, out, workers=2)`). Inputs,
    output and `work_dir` may be local paths or URIs (s3://bucket/prefix, ...)."""
    from .steps import load_steps, run_steps

    started = time.monotonic()
    try:
        options = replace(options or RunOptions(), **settings)
    except TypeError as exc:
        raise TypeError(f"run_job: {exc}; the settings are RunOptions' fields") from None
    options.workers = workers = options.workers or os.cpu_count() or 1
    if options.inline and options.http:
        raise MapReduceError(
            "--http shows the tasks, attempts and workers of an embedded run; --inline runs "
            "the job in this process without any, so there is no status page to serve. Drop "
            "--inline to watch the run, or --http to debug it inline."
        )
    if workers < 1:
        raise MapReduceError("--workers must be at least 1.")
    if options.reducers is not None and options.reducers < 0:
        raise MapReduceError("--reducers must be 0 (map-only) or more.")
    check_split_size(options.split_size, options.min_split_size)
    output_dir = storage.normalize(output_dir)
    # The workers start first, while this process has no thread yet (pool.py forks them then),
    # and get ready while the job is loaded and planned here.
    cluster = None if options.inline else LocalCluster(options)
    status_page = None
    try:
        sidefiles.use_py_files_here(options.py_files)  # the job module may import them
        if isinstance(job_ref, str):
            steps = load_steps(job_ref, options.params)
        else:  # a Job, or a multi-step job's list of them (mapreduce.testing)
            steps = list(job_ref) if isinstance(job_ref, (list, tuple)) else [job_ref]
        sidefiles.attach(steps, options.files, options.archives, options.py_files)
        progress = progress or ProgressReporter(quiet=options.quiet)
        if options.http or options.http_token:
            from .web import serve_status  # prometheus-client and http.server: only when asked for

            status_page = serve_status(options.http, options.http_token, "run")
            if cluster is not None:
                cluster.watch(status_page.publisher)

        def run_step(job, step_inputs, step_output, step_format, step_overwrite):
            return _run_step(
                job,
                step_inputs,
                step_output,
                step_format,
                step_overwrite,
                options,
                progress,
                started,
                cluster,
            )

        return run_steps(
            steps,
            inputs,
            output_dir,
            run_step,
            overwrite=options.overwrite,
            output_format=options.output_format,
            work_dir=options.work_dir,
        )
    finally:
        try:
            if cluster is not None:
                with interrupts.held():
                    cluster.close()
        finally:
            if status_page is not None:
                status_page.close()


class LocalCluster:
    """The embedded coordinator and the local pool of one `mapreduce run`, which all its steps
    use. The pool starts before anything else (before the coordinator's threads: pool.py forks
    its workers when this process has none), on the ipc address in a private directory that the
    coordinator binds right after.

    The workers register at once, and then expect answers: while this thread loads and plans a
    job (before each step's submit), a background thread polls the coordinator for them (READY,
    heartbeats), so no worker finds its coordinator silent however long the planning takes.
    Only one thread uses the coordinator at a time: `submit` stops that one first."""

    def __init__(self, options: RunOptions):
        assert options.workers is not None  # run_job has filled in the default
        self.private = leftovers.owned_temp_dir("mapreduce-run-")
        self.coordinator: Coordinator | None = None
        self.pool: LocalPool | None = None
        self.monitor = None
        self._background: tuple[threading.Thread, threading.Event] | None = None
        try:
            address = _local_address(self.private)
            secret = secrets.token_bytes(32)
            self.pool = LocalPool(
                address,
                options.workers,
                secret=secret,
                heartbeat_interval=options.heartbeat_interval,
                liveness=options.liveness,
            )
            if not address.endswith(":*"):  # an ipc path, known before it is bound
                self.pool.start()
            # A --work-dir is checked and created by the first step, once its paths are checked.
            work_dir = storage.absolute(options.work_dir) if options.work_dir else self.private
            self.coordinator = Coordinator(
                address,
                work_dir=work_dir,
                secret=secret,
                settings=SchedulerSettings(
                    heartbeat_interval=options.heartbeat_interval,
                    liveness=options.liveness,
                    backup_min_runtime=options.backup_min_runtime,
                    backup_slowdown=options.backup_slowdown,
                ),
            )
            if not self.pool.processes:  # loopback tcp: its port is known once bound
                self.pool.connect = self.coordinator.address
                self.pool.start()
            self._serve_in_background()
        except BaseException:
            self.close()
            raise

    def _serve_in_background(self) -> None:
        """Answer the workers from a thread of its own until the next submit."""
        coordinator, stop = self.coordinator, threading.Event()
        assert coordinator is not None

        def serve() -> None:
            try:
                while not stop.is_set():
                    coordinator.poll(0.1)
            except Exception:
                log.exception("the coordinator stopped answering its workers between jobs")

        thread = threading.Thread(target=serve, name="mapreduce-run-between-jobs", daemon=True)
        thread.start()
        self._background = (thread, stop)

    def _stop_background(self) -> None:
        if self._background is not None:
            thread, stop = self._background
            stop.set()
            thread.join()
            self._background = None

    def submit(self, submission) -> str:
        """Start a job (the background thread stops answering first); returns its id."""
        assert self.coordinator is not None
        self._stop_background()
        return self.coordinator.submit(submission)

    def watch(self, publisher) -> None:
        """Show this run's jobs on a status page."""
        assert self.coordinator is not None
        self.coordinator.monitor = self.monitor = publisher

    def serve(self, job_id: str, signals: interrupts.Noted, progress: ProgressReporter) -> None:
        """Serve the run's workers until the job has ended."""
        assert self.coordinator is not None and self.pool is not None
        coordinator, pool = self.coordinator, self.pool
        while not coordinator.finished(job_id):
            signals.check()  # a Ctrl-C whose exception a destructor dropped
            coordinator.poll(0.1)
            coordinator.workers_exited(pool.check())
            progress.update(coordinator.progress(job_id))
        self._serve_in_background()  # while the next step is planned

    def close(self) -> None:
        """Stop the workers and the coordinator (a job still running is cancelled and its staging
        removed; a commit under way finishes first) and remove the private directory. Again: nothing."""
        try:
            self._stop_background()
            if self.pool is not None:
                self.pool.stop()
            if self.coordinator is not None:
                self.coordinator.close()
                if self.monitor is not None:
                    self.monitor.detach(self.coordinator)
        finally:
            self.pool = self.coordinator = self.monitor = None
            shutil.rmtree(self.private, ignore_errors=True)


def _run_step(
    job: Job,
    inputs: list[str],
    output_dir: str,
    output_format: str,
    overwrite: bool,
    options: RunOptions,
    progress: ProgressReporter,
    started: float,
    cluster: LocalCluster | None,
) -> RunResult:
    """One job (one step) on the run's embedded coordinator and local pool, or inline."""
    work_dir, workers = options.work_dir, options.workers
    assert workers is not None  # run_job has filled in the default
    submission = prepare_submission(
        job,
        inputs,
        output_dir,
        replace(options, output_format=output_format, overwrite=overwrite),
        workers=workers,
        warn=progress.warn,
        work_dir=work_dir,
    )
    if work_dir is not None:  # created once the job's paths are checked (the same path as the
        work_dir = check_work_dir(work_dir)  # cluster's coordinator was given, made absolute)
    if cluster is None:
        from .inline import run_inline

        counters, snapshot = run_inline(job, submission, progress, started, work_dir)
        return RunResult(output_dir, counters, snapshot)
    coordinator = cluster.coordinator
    assert coordinator is not None
    job_id = None
    stopped_by = None
    with interrupts.Noted() as signals:
        try:
            job_id = cluster.submit(submission)
            cluster.serve(job_id, signals, progress)
        except (KeyboardInterrupt, Terminated) as exc:
            stopped_by = (
                "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
            )
        finally:
            # Already stopping: a second Ctrl-C does not cut the stop short. A commit under way
            # finishes first; a job still running is cancelled and its staging removed.
            with interrupts.held(deliver=stopped_by is None):
                if stopped_by is not None:
                    cluster.close()
                progress.clear()
    if stopped_by is not None:
        committed = job_id is not None and coordinator.job(job_id).status == "succeeded"
        raise interrupted(stopped_by, output_dir, committed)
    assert job_id is not None  # not stopped: the job was submitted
    record = coordinator.job(job_id)
    if record.error is not None:
        raise record.error
    snapshot = coordinator.progress(job_id)
    snapshot["elapsed"] = time.monotonic() - started  # the whole command, start-up included
    progress.summary(snapshot, record.counters, output_dir)
    return RunResult(output_dir, record.counters, snapshot)


def _local_address(private_dir: str) -> str:
    """An ipc socket in our private (0700) directory; loopback tcp when that path is too long for a
    Unix socket (about 107 bytes), as with a deep TMPDIR."""
    path = os.path.join(private_dir, "coordinator")
    return f"ipc://{path}" if len(path.encode()) < 100 else "tcp://127.0.0.1:*"
