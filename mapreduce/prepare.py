"""What every runner does before a job runs, whoever runs it (`run`, `submit`): the options they
share, and the job's submission made from them: paths checked, inputs expanded, splits
planned, the job's `setup` run, its code pickled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from . import defaults, storage
from .commit import check_job_paths, check_output_dir
from .coordinator.submission import JobSubmission
from .errors import InputError, JobLoadError
from .inputs import TEXT_FORMATS, expand_inputs, looks_binary, plan_splits, reader_for
from .jobspec import Job, dumps_job


@dataclass
class JobOptions:
    """How a job runs, the options `mapreduce run` and `mapreduce submit` share, with the
    defaults of `defaults.py`. Each runner's own options extend it (RunOptions, SubmitOptions)."""

    reducers: int | None = None  # default: one per task slot; 0: map-only
    split_size: int | None = None  # default: defaults.SPLIT_SIZE_BYTES, spread over the slots
    min_split_size: int = defaults.MIN_SPLIT_SIZE_BYTES
    overwrite: bool = False
    max_attempts: int = defaults.MAX_ATTEMPTS
    max_lost_attempts: int = defaults.MAX_LOST_ATTEMPTS
    sort_buffer: int = defaults.SORT_BUFFER_BYTES  # bytes a map task buffers before a spill
    spill_records: int = defaults.SPILL_RECORDS  # ...or records
    output_format: str = "text"
    skip_bad_records: bool = False
    max_skipped: int = defaults.MAX_SKIPPED_RECORDS
    skip_binary: bool = False
    params: dict | None = None  # --param NAME=VALUE, for the job's PARAMS
    quiet: bool = True
    files: list = field(default_factory=list)  # --file: in every task's working directory
    archives: list = field(default_factory=list)  # --archive: unpacked there
    py_files: list = field(default_factory=list)  # --py-files: importable by the job


def prepare_submission(
    job: Job,
    inputs: list[str],
    output_dir: str,
    options: JobOptions,
    *,
    workers: int,
    warn: Callable[[str], None] | None = None,
    work_dir: str | None = None,
) -> JobSubmission:
    """Check everything a user can get wrong before any process starts or any file is written,
    and make the job's submission: its splits planned for `workers` task slots, its code
    pickled. `work_dir` is checked against the paths too. Once all is well, `warn` is told
    about each input that looks binary."""
    overwrite, skip_binary = options.overwrite, options.skip_binary
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
    splits = plan_splits(files, job.input_format, options.split_size, min_splits=workers)
    # --reducers 0 runs any job map-only, as Hadoop's zero reducers do.
    reducers = options.reducers
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
        options.max_attempts,
        max_losses=options.max_lost_attempts,
        output_format=options.output_format,
        skip_bad_records=options.skip_bad_records,
        max_skipped=options.max_skipped,
        skipped_earlier=list(job.skipped_earlier),
        inputs=[storage.absolute(item) for item in inputs],
        split_by=reader_for(job.input_format).split_by,
        sort_buffer=options.sort_buffer,
        spill_records=options.spill_records,
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
