"""The `mapreduce` command: a thin click shell over the library API.

A user's mistake (bad input, a job that fails) is printed as one paragraph and a non-zero exit
status; framework tracebacks are for framework bugs only.
"""

from __future__ import annotations

import logging
import sys

import click

from . import __version__, config, defaults
from .exits import reports_errors
from .logconfig import configure_logging
from .sizes import parse_duration, parse_size, size_text


class SizeType(click.ParamType):
    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType):
    """Seconds, written as 5s, 500ms, 2m or a plain number; at least `min`."""

    name = "duration"

    def __init__(self, min: float = 0.0):
        self.min = min

    def convert(self, value, param, ctx):
        try:
            seconds = value if isinstance(value, float) else parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds < self.min:
            self.fail(f"{value!r} is less than the minimum of {self.min:g}s", param, ctx)
        return seconds


def heartbeat_options(command):
    command = click.option(
        "--heartbeat-interval",
        type=DurationType(min=0.01),
        default=defaults.HEARTBEAT_INTERVAL_S,
        show_default=True,
        help="Time between heartbeats, both directions (seconds, or e.g. 500ms).",
    )(command)
    command = click.option(
        "--liveness",
        type=click.IntRange(min=1),
        default=defaults.HEARTBEAT_LIVENESS,
        show_default=True,
        help="Heartbeat intervals of silence before a peer is declared dead.",
    )(command)
    return command


def http_options(help_http: str):
    """--http and --http-token: the live status page, its JSON API and /metrics."""

    def decorate(command):
        command = click.option(
            "--http-token",
            default=None,
            metavar="TOKEN",
            help="Require this token (?token=TOKEN or 'Authorization: Bearer TOKEN') for the "
            "status data and /metrics; needed to serve them on a non-loopback address.",
        )(command)
        return click.option("--http", default=None, metavar="[HOST:]PORT", help=help_http)(command)

    return decorate


def scheduler_options(command):
    """The coordinator's tunables `run` (its embedded coordinator) and `coordinator` share."""
    command = click.option(
        "--backup-slowdown",
        type=click.FloatRange(min=1.0),
        default=defaults.BACKUP_SLOWDOWN_FACTOR,
        show_default=True,
        help="...and has run this many times longer than the median finished task.",
    )(command)
    command = click.option(
        "--backup-after",
        type=DurationType(),
        default=defaults.BACKUP_MIN_RUNTIME_S,
        show_default=True,
        help="Time an attempt must run before a straggler gets a backup attempt (seconds, "
        "or e.g. 1m).",
    )(command)
    return command


def security_options(command):
    command = click.option(
        "--insecure",
        is_flag=True,
        help="No keys at all (with a warning): anyone who can connect can run code on the "
        "workers; also allows a non-loopback address without --keys (trusted networks only).",
    )(command)
    command = click.option(
        "--keys",
        "keys_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Key directory from `mapreduce keys generate` (CURVE auth and encryption) "
        "[default: this user's own key set, made on first use in "
        "$XDG_CONFIG_HOME/mapreduce/keys, i.e. ~/.config/mapreduce/keys; loopback only].",
    )(command)
    return command


def coordinator_options(command):
    """Where `submit` and `status` find the coordinator: an address (or a list), or etcd."""
    command = click.option(
        "--elect",
        default=None,
        metavar="etcd://HOST:PORT[/NAME]",
        help="Find the coordinator elected leader under NAME (default 'mapreduce') in this "
        "etcd, and follow it when another takes over (needs `pip install 'mapreduce[ha]'`).",
    )(command)
    command = click.option(
        "-c",
        "--coordinator",
        default=None,
        help="Coordinator address, e.g. tcp://host:5555; or several, comma-separated "
        "(standbys do not answer: the leader does).",
    )(command)
    return command


def _parse_params(ctx, param, values) -> dict:
    params = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"'{item}' is not NAME=VALUE", ctx=ctx, param=param)
        params[name] = value
    return params


def job_options(command):
    """The options `run` and `submit` share."""
    for decorator in reversed(
        [
            click.option(
                "-o",
                "--output",
                "output_dir",
                required=True,
                metavar="DIR|URI",
                help="Directory (or URI, e.g. s3://bucket/out) for part-NNNNN files and "
                "_SUCCESS; must not exist or be empty.",
            ),
            click.option(
                "-r",
                "--reducers",
                type=click.IntRange(min=0),
                default=None,
                help="Reduce tasks, i.e. part files [default: number of workers]; 0 runs "
                "the job map-only (no combiner, no reducer: the map output is the "
                "output).",
            ),
            click.option(
                "--split-size",
                type=SizeType(),
                default=None,
                help="Cut input into splits of about this size, e.g. 64MB [default: "
                f"{size_text(defaults.SPLIT_SIZE_BYTES)}, smaller to keep every worker busy].",
            ),
            click.option(
                "--min-split-size",
                type=SizeType(),
                default=defaults.MIN_SPLIT_SIZE_BYTES,
                help="The smallest --split-size accepted "
                f"[default: {size_text(defaults.MIN_SPLIT_SIZE_BYTES)}]; lower it only to get "
                "many tasks out of a tiny input (tests).",
            ),
            click.option(
                "--max-attempts",
                type=click.IntRange(min=1),
                default=defaults.MAX_ATTEMPTS,
                show_default=True,
                help="Attempts per task before the job fails.",
            ),
            click.option(
                "--max-lost-attempts",
                type=click.IntRange(min=1),
                default=defaults.MAX_LOST_ATTEMPTS,
                show_default=True,
                help="Attempts of a task lost to dying workers (or processes) before the job "
                "fails.",
            ),
            click.option(
                "--sort-buffer",
                type=SizeType(),
                default=defaults.SORT_BUFFER_BYTES,
                show_default=size_text(defaults.SORT_BUFFER_BYTES),
                help="Map output a map task holds in memory (estimated) before it writes a "
                "sorted spill, e.g. 256MiB.",
            ),
            click.option(
                "--spill-records",
                type=click.IntRange(min=1),
                default=defaults.SPILL_RECORDS,
                show_default=True,
                help="...or this many map output records, whichever comes first.",
            ),
            click.option(
                "--overwrite", is_flag=True, help="Replace OUTPUT, once the new result is complete."
            ),
            click.option("-q", "--quiet", is_flag=True, help="No progress and no summary."),
            click.option(
                "--output-format",
                type=click.Choice(["text", "jsonl", "parquet"]),
                default="text",
                show_default=True,
                help="part-NNNNN as key<TAB>value text, JSON lines, or Parquet (typed columns).",
            ),
            click.option(
                "--skip-bad-records",
                is_flag=True,
                help="Count and skip malformed JSON lines and CSV rows instead of failing, and "
                "records (reduce keys) the job's code raised on in two attempts; they are "
                "listed in OUTPUT/_logs/skipped.",
            ),
            click.option(
                "--max-skipped",
                type=click.IntRange(min=0),
                default=defaults.MAX_SKIPPED_RECORDS,
                show_default=True,
                help="With --skip-bad-records: fail the job rather than skip more records.",
            ),
            click.option(
                "--skip-binary",
                is_flag=True,
                help="Skip input files that look binary (a NUL byte in the first 8 KiB) "
                "instead of reading them as text (with a warning).",
            ),
            click.option(
                "--file",
                "files",
                multiple=True,
                metavar="PATH|URI",
                help="A file every task finds in its working directory under its base name "
                "(repeatable).",
            ),
            click.option(
                "--archive",
                "archives",
                multiple=True,
                metavar="PATH|URI",
                help="A .zip or .tar.gz unpacked into a directory of its base name in every "
                "task's working directory (repeatable).",
            ),
            click.option(
                "--py-files",
                "py_files",
                multiple=True,
                metavar="PATH|URI",
                help="A .py module or a .zip of packages the job imports (repeatable).",
            ),
            click.option(
                "--mapper-cmd",
                default=None,
                metavar="CMD",
                help="Hadoop Streaming: a shell command as the mapper (input lines on stdin, "
                "key<TAB>value lines on stdout); JOB is then the first INPUT.",
            ),
            click.option(
                "--combiner-cmd",
                default=None,
                metavar="CMD",
                help="With --mapper-cmd: a shell command as the combiner.",
            ),
            click.option(
                "--reducer-cmd",
                default=None,
                metavar="CMD",
                help="With --mapper-cmd: a shell command as the reducer (sorted key<TAB>value "
                "lines of its partition on stdin).",
            ),
            click.option(
                "-p",
                "--param",
                "params",
                multiple=True,
                callback=_parse_params,
                metavar="NAME=VALUE",
                help="Set a parameter the job declares in PARAMS (repeatable).",
            ),
        ]
    ):
        command = decorator(command)
    return command


def _more_verbose(ctx, param, value) -> None:
    """`-v` after the subcommand (`mapreduce run -v ...`) counts as before it."""
    if value:
        root = logging.getLogger()
        root.setLevel(min(root.level, logging.WARNING - 10 * min(value, 2)))


def verbose_option(command):
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_more_verbose,
        help="Log more (-v: info, -vv: debug).",
    )(command)


def _use_config(ctx, param, value) -> None:
    """--config (eager, so before any other option): read and check the configuration file and
    the MAPREDUCE_* variables, and make the file's settings the defaults of every command's
    options (click's default map; the environment and the command line still win)."""
    if ctx.resilient_parsing:
        return
    try:
        loaded = config.load(ctx.command, config.find_file(value))
        config.check_environment(ctx.command)
    except config.ConfigError as exc:
        click.echo(f"mapreduce: error: {exc.paragraph()}", err=True)
        ctx.exit(exc.exit_code)
    ctx.default_map = loaded.default_map
    ctx.meta[CONFIG_META] = loaded


CONFIG_META = "mapreduce.config"  # the root context's Loaded configuration, for `config show`


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar=config.CONFIG_ENV,
    is_eager=True,
    expose_value=False,
    callback=_use_config,
    help=f"Configuration file (YAML, or .json) [default: ${config.CONFIG_ENV}, else "
    f"./{config.LOCAL_FILE}, else $XDG_CONFIG_HOME/{config.USER_FILE}].",
)
@click.option("-v", "--verbose", count=True, help="Log more (-v: info, -vv: debug).")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the framework's log records (coordinator, workers) to this file.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text, or one JSON object per line (time, level, logger, job, task, "
    "attempt, worker, message).",
)
@click.version_option(__version__, "-V", "--version", prog_name="mapreduce")
def main(verbose, log_file, log_format):
    """MapReduce jobs written as plain Python modules, run on worker processes over ZeroMQ."""
    configure_logging(verbose, log_file, log_format)


def _job_option_values(values: dict) -> dict:
    """The options `run` and `submit` share (`job_options`), as JobOptions' fields: click passes
    them by the same names, repeatable ones as tuples."""
    import dataclasses

    from .prepare import JobOptions

    names = {field.name for field in dataclasses.fields(JobOptions)}
    unknown = set(values) - names
    assert not unknown, f"options that are not JobOptions' fields: {sorted(unknown)}"
    return {
        name: list(value) if isinstance(value, tuple) else value for name, value in values.items()
    }


def _job_and_inputs(job, inputs, mapper_cmd, combiner_cmd, reducer_cmd):
    """The job to run and its inputs: JOB and INPUTs, or, with --mapper-cmd, a streaming job
    whose inputs are all the arguments (JOB included)."""
    if mapper_cmd is None:
        if reducer_cmd is not None or combiner_cmd is not None:
            raise click.UsageError(
                "--reducer-cmd and --combiner-cmd go with --mapper-cmd (a job module sets "
                "REDUCER_CMD or COMBINER_CMD instead)."
            )
        if not inputs:
            raise click.UsageError("Missing argument 'INPUTS...'.")
        return job, list(inputs)
    from .jobspec import streaming_job

    return streaming_job(mapper_cmd, reducer_cmd, combiner_cmd), [job, *inputs]


@main.command("run")
@verbose_option
@click.argument("job")
@click.argument("inputs", nargs=-1)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: number of cores].",
)
@job_options
@click.option(
    "--inline",
    is_flag=True,
    help="Run the whole job in this process (no workers, no retries) so breakpoint() "
    "and pdb work in the job's code; same output.",
)
@click.option(
    "--work-dir",
    default=None,
    metavar="DIR|URI",
    help="Where map output (shuffle files) goes: a directory or a URI such as "
    "s3://bucket/tmp [default: a private temporary directory].",
)
@scheduler_options
@heartbeat_options
@http_options(
    "Serve a live status page (jobs, tasks, workers), /api/status and /metrics on this port "
    "(loopback) while the run lasts, e.g. --http 4040."
)
@reports_errors
def run_command(
    job,
    inputs,
    output_dir,
    workers,
    mapper_cmd,
    combiner_cmd,
    reducer_cmd,
    inline,
    work_dir,
    backup_after,
    backup_slowdown,
    heartbeat_interval,
    liveness,
    http,
    http_token,
    **shared,
):
    """Run JOB over INPUT files, directories or globs on this machine.

    INPUT, --output and --work-dir may also be URIs (s3://bucket/prefix, hdfs://...).

    JOB is a Python file (jobs/wordcount.py) or module name (jobs.wordcount) defining
    mapper(key, value) and usually reducer(key, values). With --mapper-cmd (Hadoop Streaming)
    there is no JOB: every argument is an INPUT.
    """
    from .local import RunOptions, run_job

    job, inputs = _job_and_inputs(job, inputs, mapper_cmd, combiner_cmd, reducer_cmd)
    run_job(
        job,
        inputs,
        output_dir,
        RunOptions(
            workers=workers,
            inline=inline,
            work_dir=work_dir,
            backup_min_runtime=backup_after,
            backup_slowdown=backup_slowdown,
            heartbeat_interval=heartbeat_interval,
            liveness=liveness,
            http=http,
            http_token=http_token,
            **_job_option_values(shared),
        ),
    )


@main.command("coordinator")
@verbose_option
@click.option(
    "--bind",
    default=defaults.COORDINATOR_BIND,
    show_default=True,
    help="Address to listen on for workers and clients.",
)
@click.option(
    "--work-dir",
    default=None,
    metavar="DIR|URI",
    help="Directory or URI (s3://bucket/tmp) for the journal and the shuffle files, reachable "
    "at the same path by every worker; starting the coordinator again with the same one "
    "resumes its jobs [default: $XDG_STATE_HOME/mapreduce/coordinator-ADDRESS, i.e. under "
    "~/.local/state].",
)
@click.option(
    "--elect",
    default=None,
    metavar="etcd://HOST:PORT[/NAME]",
    help="Stand by for the others started with the same NAME (default 'mapreduce') and the "
    "same --work-dir; lead when elected (the leader holds an etcd lease; needs `pip install "
    "'mapreduce[ha]'`). Not listening while standing by.",
)
@click.option(
    "--advertise",
    default=None,
    metavar="ADDR",
    help="With --elect: the address workers and clients are told to connect to [default: the "
    "--bind address, a wildcard host replaced by this machine's name].",
)
@click.option(
    "--lease-ttl",
    type=click.IntRange(min=2),
    default=defaults.ELECTION_TTL_S,
    show_default=True,
    help="With --elect: seconds of the leader's lease; a standby takes over about this long "
    "after the leader died.",
)
@click.option(
    "--allow-path",
    "allowed_paths",
    multiple=True,
    metavar="PREFIX",
    help="Jobs may read inputs and write outputs only under this directory or URI prefix "
    "(s3://bucket/prefix); others are refused at submission (repeatable) [default: anywhere "
    "this coordinator's user can read and write].",
)
@click.option(
    "--finished-jobs-kept",
    type=click.IntRange(min=0),
    default=defaults.FINISHED_JOBS_KEPT,
    show_default=True,
    help="Finished jobs the coordinator remembers for `status`.",
)
@scheduler_options
@heartbeat_options
@security_options
@http_options(
    "Serve a live status page (jobs, tasks, workers), /api/status, /api/jobs/ID and /metrics "
    "on HOST:PORT, e.g. 127.0.0.1:8080; a non-loopback HOST needs --http-token."
)
@reports_errors
def coordinator_command(
    bind,
    work_dir,
    elect,
    advertise,
    lease_ttl,
    allowed_paths,
    finished_jobs_kept,
    backup_after,
    backup_slowdown,
    heartbeat_interval,
    liveness,
    keys_dir,
    insecure,
    http,
    http_token,
):
    """Run a coordinator that accepts jobs from `mapreduce submit` and hands tasks to workers."""
    from .coordinator import serve
    from .scheduler import SchedulerSettings
    from .web import serve_status

    status_page = serve_status(http, http_token, "coordinator")
    try:
        code = serve(
            bind,
            work_dir,
            SchedulerSettings(
                heartbeat_interval=heartbeat_interval,
                liveness=liveness,
                backup_min_runtime=backup_after,
                backup_slowdown=backup_slowdown,
            ),
            keys_dir,
            insecure,
            elect=elect,
            advertise=advertise,
            lease_ttl=lease_ttl,
            allowed_paths=allowed_paths,
            finished_jobs_kept=finished_jobs_kept,
            status_page=status_page,
        )
    finally:
        if status_page is not None:
            status_page.close()
    sys.exit(code)


@main.command("submit")
@verbose_option
@click.argument("job")
@click.argument("inputs", nargs=-1)
@coordinator_options
@job_options
@click.option(
    "--timeout",
    type=DurationType(min=0.1),
    default=defaults.REQUEST_TIMEOUT_S,
    show_default=True,
    help="Time to wait for the coordinator to answer a request (seconds, or e.g. 1m).",
)
@click.option(
    "--wait-for-workers",
    type=DurationType(),
    default=defaults.SUBMIT_WAIT_FOR_WORKERS_S,
    show_default=True,
    help="With no worker registered yet: time to wait for some before cutting the input into "
    "splits for them.",
)
@security_options
@reports_errors
def submit_command(
    job,
    inputs,
    coordinator,
    output_dir,
    mapper_cmd,
    combiner_cmd,
    reducer_cmd,
    timeout,
    wait_for_workers,
    keys_dir,
    insecure,
    elect,
    **shared,
):
    """Ship JOB to a coordinator and wait for it to finish; Ctrl-C cancels it there."""
    from .client import SubmitOptions, submit_job

    need_coordinator(coordinator, elect)
    job, inputs = _job_and_inputs(job, inputs, mapper_cmd, combiner_cmd, reducer_cmd)
    submit_job(
        job,
        inputs,
        output_dir,
        coordinator,
        SubmitOptions(
            elect=elect,
            timeout=timeout,
            wait_for_workers=wait_for_workers,
            keys_dir=keys_dir,
            insecure=insecure,
            **_job_option_values(shared),
        ),
    )


@main.command("status")
@verbose_option
@coordinator_options
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
@click.option(
    "--timeout",
    type=DurationType(min=0.1),
    default=defaults.REQUEST_TIMEOUT_S,
    show_default=True,
    help="Time to wait for the coordinator to answer a request (seconds, or e.g. 1m).",
)
@security_options
@reports_errors
def status_command(coordinator, elect, as_json, timeout, keys_dir, insecure):
    """Show a coordinator's jobs (with their counters) and workers."""
    import json

    from .client import CoordinatorClient
    from .progress import counter_lines
    from .skew import skew_lines

    need_coordinator(coordinator, elect)
    with CoordinatorClient(
        coordinator, timeout, keys_dir=keys_dir, insecure=insecure, elect=elect
    ) as client:
        status = client.status()
    status.pop("request", None)
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    click.echo(f"jobs ({len(status['jobs'])}):")
    for job in status["jobs"]:
        p = job["progress"]
        tasks = f"map {p['maps_done']}/{p['maps']}" + (
            f", reduce {p['reduces_done']}/{p['reduces']}" if p["reduces"] else ""
        )
        click.echo(
            f"  {job['job']}  {job['status']:<9}  {job['name']}  {tasks}  "
            f"failed {p['failed']} lost {p['lost']}  {p['elapsed']:.1f}s  -> {job['output']}"
        )
        click.echo(f"      {_times(job)}")
        for line in counter_lines(job.get("counters") or {}) + skew_lines(p.get("skew")):
            click.echo(f"      {line}")
        for number, line in enumerate((job.get("error") or "").splitlines()):
            click.echo(f"      {'error: ' if number == 0 else '  '}{line}".rstrip())
    click.echo(f"workers ({len(status['workers'])}):")
    for w in status["workers"]:
        click.echo(
            f"  {w['id']}  host {w.get('host')}  pid {w.get('pid')}  running {w['running']}/"
            f"{w['capacity']}  tasks done {w['tasks_done']}  last heartbeat "
            f"{w['last_heartbeat_s']:.1f}s ago"
        )


def _times(job: dict) -> str:
    """When a job started and ended, in local time, for `status`."""
    import time

    def shown(when) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))

    started = f"started {shown(job['submitted_at'])}" if job.get("submitted_at") else "started ?"
    return started + (f", ended {shown(job['finished_at'])}" if job.get("finished_at") else "")


@main.command("worker")
@verbose_option
@click.option(
    "--connect",
    default=None,
    help="Coordinator address, e.g. tcp://host:5555; or several, comma-separated, tried in "
    "turn until one answers (standbys do not listen).",
)
@click.option(
    "--elect",
    default=None,
    metavar="etcd://HOST:PORT[/NAME]",
    help="Find the coordinator elected leader under NAME (default 'mapreduce') in this etcd, "
    "and follow it when another takes over (needs `pip install 'mapreduce[ha]'`).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=defaults.WORKER_PROCESSES,
    show_default=True,
    help="Tasks this worker runs at once (one executor process each).",
)
@click.option(
    "--parent-pid",
    type=int,
    default=None,
    hidden=True,
    help="Exit when this process is no longer our parent (used by the local pool).",
)
@click.option(
    "--reconnect-backoff",
    type=DurationType(min=0.01),
    default=defaults.RECONNECT_BACKOFF_MIN_S,
    show_default=True,
    help="First wait before registering again with a coordinator that went silent (seconds, "
    "or e.g. 500ms); it doubles at each silent try, up to "
    f"{defaults.RECONNECT_BACKOFF_MAX_S:g} s.",
)
@heartbeat_options
@security_options
@reports_errors
def worker_command(
    connect,
    elect,
    processes,
    parent_pid,
    reconnect_backoff,
    heartbeat_interval,
    liveness,
    keys_dir,
    insecure,
):
    """Serve a coordinator: run the map and reduce tasks it hands out."""
    from .worker.main import run_worker

    need_coordinator(connect, elect, "--connect")
    if not logging.getLogger().handlers:
        configure_logging()  # started as `python -m mapreduce.worker`: --log-file's file, if any
    sys.exit(
        run_worker(
            connect,
            processes,
            parent_pid=parent_pid,
            heartbeat_interval=heartbeat_interval,
            liveness=liveness,
            reconnect_backoff=reconnect_backoff,
            keys_dir=keys_dir,
            insecure=insecure,
            elect=elect,
        )
    )


def need_coordinator(address: str | None, elect: str | None, option: str = "--coordinator"):
    if not address and not elect:
        raise click.UsageError(
            f"say where the coordinator is: {option} tcp://HOST:PORT (or several, "
            f"comma-separated), or --elect etcd://HOST:PORT[/NAME] to follow the elected leader."
        )


@main.group("keys")
def keys_group():
    """CURVE key pairs for the coordinator, workers and clients, and which keys it allows."""


@keys_group.command("generate")
@click.argument("directory", type=click.Path(file_okay=False))
@reports_errors
def keys_generate_command(directory):
    """Create DIRECTORY with key pairs for the coordinator, workers and clients, and the
    coordinator's allow-lists (DIRECTORY/authorized/workers/ and authorized/clients/)."""
    from .security import generate_keys

    for path in generate_keys(directory):
        click.echo(path)
    click.echo(
        f"Copy {directory} to every machine (workers need worker.key*, clients client.key*, "
        f"both coordinator.key; only the coordinator needs coordinator.key_secret) and pass "
        f"--keys {directory} to coordinator, worker, submit and status. Allow more keys with "
        f"`mapreduce keys authorize --keys {directory} --role worker|client FILE.key`.",
        err=True,
    )


@keys_group.command("authorize")
@click.option(
    "--role",
    type=click.Choice(["worker", "client"]),
    required=True,
    help="worker: may serve tasks (never submit or read status); client: may submit, cancel "
    "and read status (never serve as a worker).",
)
@click.option(
    "--keys",
    "keys_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The coordinator's key directory [default: this user's own key set].",
)
@click.argument("public_key_file", type=click.Path(dir_okay=False, exists=True))
@reports_errors
def keys_authorize_command(role, keys_dir, public_key_file):
    """Allow the public key in PUBLIC_KEY_FILE (another machine's or user's worker.key or
    client.key) to connect in ROLE; a running coordinator reads it at the next handshake."""
    from .security import authorize_key, default_keys_dir, ensure_keys

    click.echo(authorize_key(keys_dir or ensure_keys(default_keys_dir()), role, public_key_file))


@main.group("config")
def config_group():
    """The settings from the configuration file and the environment."""


@config_group.command(
    "show", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
@click.argument("command_line", nargs=-1, type=click.UNPROCESSED, metavar="[COMMAND [ARGS]...]")
@click.pass_context
@reports_errors
def config_show_command(ctx, as_json, command_line):
    """Print every setting of every command as it would be used now, and where it came from:
    the command line, an environment variable, the configuration file, or the default.

    With COMMAND (and its ARGS): only its settings, as `mapreduce COMMAND ARGS` would use them."""
    root = ctx.find_root()
    loaded = root.meta.get(CONFIG_META) or config.Loaded()
    settings = config.effective(root, loaded, list(command_line))
    click.echo(
        config.show_json(settings, loaded) if as_json else config.show_text(settings, loaded)
    )


# Every option of the commands (whoever adds it) is a setting with its MAPREDUCE_<SETTING> variable.
config.name_environment_variables(main)


if __name__ == "__main__":
    main()
