"""`mapreduce run`: the embedded form of the distributed system.

The same Coordinator and the same worker processes as a cluster, all on this machine: the
coordinator runs in this process, bound to an ipc socket in a private (0700) temporary directory,
and a local pool starts N `python -m mapreduce.worker` processes that connect to it. Frames are
authenticated with a secret shared only with those processes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from . import defaults, interrupts, leftovers, sidefiles, storage
from .commit import check_job_paths, check_output_dir
from .coordinator import Coordinator, JobSubmission, check_work_dir
from .errors import InputError, JobCancelledError, JobLoadError, MapReduceError
from .inputs import (
    TEXT_FORMATS,
    check_split_size,
    expand_inputs,
    looks_binary,
    plan_splits,
    reader_for,
)
from .interrupts import Terminated, raise_terminated
from .jobspec import Job, dumps_job
from .progress import ProgressReporter
from .scheduler import SchedulerSettings
from .worker.pool import LocalPool


@dataclass
class RunResult:
    output_dir: str
    counters: dict
    progress: dict


def interrupted_error(signal_name: str, output_dir: str, committed: bool) -> JobCancelledError:
    """What `run` or `submit` says when SIGINT or SIGTERM stopped it: whether the output was
    committed (the signal came during the final commit, which finishes first) or not."""
    if committed:
        error = JobCancelledError(
            f"{signal_name} arrived as the job was committing; the commit "
            f"finished first: '{output_dir}' holds the job's complete output "
            f"(with _SUCCESS)."
        )
    else:
        error = JobCancelledError(
            f"{signal_name}: the job was cancelled and no output was "
            f"committed; '{output_dir}' is as it was before the job."
        )
    error.exit_code = 143 if signal_name == "terminated (SIGTERM)" else 130
    return error


def prepare_submission(
    job: Job,
    inputs: list[str],
    output_dir: str,
    *,
    workers: int,
    reducers: int | None,
    split_size: int | None,
    overwrite: bool,
    max_attempts: int,
    output_format: str = "text",
    skip_bad_records: bool = False,
    max_skipped: int = defaults.MAX_SKIPPED_RECORDS,
    skip_binary: bool = False,
    warn: Callable[[str], None] | None = None,
    work_dir: str | None = None,
) -> JobSubmission:
    """Check everything a user can get wrong before any process starts or any file is written.
    Once all is well, `warn` is told about each input that looks binary."""
    files = expand_inputs(list(inputs))
    check_job_paths(inputs, output_dir, work_dir)
    check_output_dir(output_dir, overwrite)
    binary = (
        [file for file in files if looks_binary(file.path)]
        if job.input_format in TEXT_FORMATS
        else []
    )
    if skip_binary and binary:
        skipped = set(binary)
        files = [file for file in files if file not in skipped]
        if not files:
            raise InputError(
                f"every input file looks binary (a NUL byte in its first "
                f"{defaults.BINARY_CHECK_BYTES // 1024} KiB), and --skip-binary "
                f"skips such files, so there is nothing to read. Pass the text files "
                f"to read, or leave out --skip-binary to read these as text anyway."
            )
    splits = plan_splits(files, job.input_format, split_size, min_splits=workers)
    # --reducers 0 runs any job map-only, as Hadoop's zero reducers do.
    num_reducers = 0 if job.map_only or reducers == 0 else (reducers or workers)
    if job.setup is not None:
        _run_setup(job, [file.path for file in files], num_reducers)
    try:
        code = dumps_job(job)
    except Exception as exc:
        raise JobLoadError(
            f"job '{job.name}' cannot be shipped to workers: pickling it failed "
            f"with {type(exc).__name__}: {exc}. Module-level values the job's "
            f"functions use must be picklable (open files, sockets and locks are "
            f"not)."
        ) from None
    if warn is not None:
        for file in binary:
            warn(_binary_warning(file.path, skip_binary))
    return JobSubmission(
        job.name,
        code,
        [s.to_wire() for s in splits],
        [s.describe() for s in splits],
        num_reducers,
        output_dir,
        overwrite,
        max_attempts,
        output_format=output_format,
        skip_bad_records=skip_bad_records,
        max_skipped=max_skipped,
        skipped_earlier=list(job.skipped_earlier),
        inputs=[storage.absolute(item) for item in inputs],
        split_by=reader_for(job.input_format).split_by,
    )


def _binary_warning(path: str, skipped: bool) -> str:
    looks = f"looks binary (a NUL byte in its first {defaults.BINARY_CHECK_BYTES // 1024} KiB)"
    if skipped:
        return f"skipped input file {path} (--skip-binary): it {looks}"
    return (
        f"input file {path} {looks} but is read as text, line by line; pass --skip-binary "
        f"to skip such files"
    )


def _run_setup(job: Job, files: list[str], num_reducers: int) -> None:
    """The job's `setup(inputs, num_reducers)` hook, run here on the submitting side before the job
    is shipped (e.g. to sample keys for a range partitioner); what it stores in module-level
    values travels with the job."""
    assert job.setup is not None
    try:
        job.setup(list(files), num_reducers)
    except Exception as exc:
        import traceback

        detail = "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:]
        ).rstrip()
        raise JobLoadError(
            f"job '{job.name}': setup(inputs, num_reducers) raised "
            f"{type(exc).__name__}: {exc}\n\n{detail}"
        ) from None


@dataclass
class RunOptions:
    """How `mapreduce run` runs a job, besides the job, its inputs and its output: the command's
    options, with the defaults of `defaults.py`."""

    workers: int | None = None  # default: the number of cores
    reducers: int | None = None  # default: the number of workers; 0: map-only
    split_size: int | None = None
    min_split_size: int = defaults.MIN_SPLIT_SIZE_BYTES
    overwrite: bool = False
    max_attempts: int = defaults.MAX_ATTEMPTS
    output_format: str = "text"
    skip_bad_records: bool = False
    max_skipped: int = defaults.MAX_SKIPPED_RECORDS
    skip_binary: bool = False
    work_dir: str | None = None  # default: a private temporary directory
    inline: bool = False
    quiet: bool = True
    heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL_S
    liveness: int = defaults.HEARTBEAT_LIVENESS
    backup_min_runtime: float = defaults.BACKUP_MIN_RUNTIME_S
    params: dict | None = None  # --param NAME=VALUE, for the job's PARAMS
    files: list = field(default_factory=list)  # --file: in every task's working directory
    archives: list = field(default_factory=list)  # --archive: unpacked there
    py_files: list = field(default_factory=list)  # --py-files: importable by the job


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
    if workers < 1:
        raise MapReduceError("--workers must be at least 1.")
    if options.reducers is not None and options.reducers < 0:
        raise MapReduceError("--reducers must be 0 (map-only) or more.")
    check_split_size(options.split_size, options.min_split_size)
    output_dir = storage.normalize(output_dir)
    sidefiles.use_py_files_here(options.py_files)  # the job module may import them
    if isinstance(job_ref, str):
        steps = load_steps(job_ref, options.params)
    else:  # a Job, or a multi-step job's list of them (mapreduce.testing)
        steps = list(job_ref) if isinstance(job_ref, (list, tuple)) else [job_ref]
    sidefiles.attach(steps, options.files, options.archives, options.py_files)
    progress = progress or ProgressReporter(quiet=options.quiet)

    def run_step(job, step_inputs, step_output, step_format, step_overwrite):
        return _run_step(
            job, step_inputs, step_output, step_format, step_overwrite, options, progress, started
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


def _run_step(
    job: Job,
    inputs: list[str],
    output_dir: str,
    output_format: str,
    overwrite: bool,
    options: RunOptions,
    progress: ProgressReporter,
    started: float,
) -> RunResult:
    """One job (one step) on the embedded coordinator and a local pool, or inline."""
    work_dir, workers = options.work_dir, options.workers
    assert workers is not None  # run_job has filled in the default
    submission = prepare_submission(
        job,
        inputs,
        output_dir,
        workers=workers,
        reducers=options.reducers,
        split_size=options.split_size,
        overwrite=overwrite,
        max_attempts=options.max_attempts,
        output_format=output_format,
        skip_bad_records=options.skip_bad_records,
        max_skipped=options.max_skipped,
        skip_binary=options.skip_binary,
        warn=progress.warn,
        work_dir=work_dir,
    )
    if work_dir is not None:
        work_dir = check_work_dir(work_dir)
    if options.inline:
        from .inline import run_inline

        counters, snapshot = run_inline(job, submission, progress, started, work_dir)
        return RunResult(output_dir, counters, snapshot)
    settings = SchedulerSettings(
        heartbeat_interval=options.heartbeat_interval,
        liveness=options.liveness,
        backup_min_runtime=options.backup_min_runtime,
    )
    private = leftovers.owned_temp_dir("mapreduce-run-")
    try:
        coordinator = Coordinator(
            _local_address(private),
            work_dir=work_dir or private,
            secret=secrets.token_bytes(32),
            settings=settings,
        )
        pool = LocalPool(
            coordinator.address,
            workers,
            secret=coordinator.secret,
            heartbeat_interval=options.heartbeat_interval,
            liveness=options.liveness,
        )
        previous_term = signal.signal(signal.SIGTERM, raise_terminated)
        job_id = None
        stopped_by = None
        try:
            pool.start()
            job_id = coordinator.submit(submission)
            while not coordinator.finished(job_id):
                coordinator.poll(0.1)
                coordinator.workers_exited(pool.check())
                progress.update(coordinator.progress(job_id))
        except (KeyboardInterrupt, Terminated) as exc:
            stopped_by = (
                "interrupted" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
            )
        finally:
            signal.signal(signal.SIGTERM, previous_term)
            # Already stopping: a second Ctrl-C does not cut the stop short. A commit under way
            # finishes first; a job still running is cancelled and its staging removed.
            with interrupts.held(deliver=stopped_by is None):
                pool.stop()
                coordinator.close()
                progress.clear()
        if stopped_by is not None:
            committed = job_id is not None and coordinator.job(job_id).status == "succeeded"
            raise interrupted_error(stopped_by, output_dir, committed)
        assert job_id is not None  # not stopped: the job was submitted
        record = coordinator.job(job_id)
        if record.error is not None:
            raise record.error
        snapshot = coordinator.progress(job_id)
        snapshot["elapsed"] = time.monotonic() - started  # the whole command, start-up included
        progress.summary(snapshot, record.counters, output_dir)
        return RunResult(output_dir, record.counters, snapshot)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _local_address(private_dir: str) -> str:
    """An ipc socket in our private (0700) directory; loopback tcp when that path is too long for a
    Unix socket (about 107 bytes), as with a deep TMPDIR."""
    path = os.path.join(private_dir, "coordinator")
    return f"ipc://{path}" if len(path.encode()) < 100 else "tcp://127.0.0.1:*"
