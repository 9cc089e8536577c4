"""Running one task attempt: the user's map or reduce code between the framework's readers and writers.

This runs in a worker's executor process. It reads only what the task message names, writes only
under the attempt's own directory, and returns a small JSON-able report; the coordinator decides
whether the attempt commits. So re-executing an attempt, or running two at once, is always safe.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from itertools import repeat

import pyarrow as pa

from mapreduce import counters, shuffle, storage, vectorized
from mapreduce.errors import RecordError
from mapreduce.jobspec import Job
from mapreduce.output import PartWriter, part_writer
from mapreduce.splits import BadRecord, Split, read_blocks, read_records

_FRAMEWORK_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules["mapreduce"], sys.modules["workers"]))


@contextlib.contextmanager
def captured_output(path: str | None):
    """The attempt's prints and log records (file descriptors 1 and 2, so C extensions' output
    too) go to its log file, not the terminal's progress line. Empty logs are removed."""
    if not path:
        yield
        return
    if storage.is_uri(path):
        with _captured_then_uploaded(path):
            yield
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        if os.path.getsize(path) == 0:
            os.unlink(path)


@contextlib.contextmanager
def _captured_then_uploaded(location: str):
    """A log under a URI: fd redirection needs a local file, so capture locally and upload the
    log (when anything was printed) at the end of the attempt."""
    import tempfile
    handle, local = tempfile.mkstemp(prefix="mapreduce-log-", suffix=".log")
    os.close(handle)
    try:
        with captured_output(local):
            yield
    finally:
        if os.path.exists(local):
            try:
                storage.upload(local, location)
            except Exception as exc:          # a log must not fail the attempt it describes
                print(f"could not upload the task log to {location}: {exc}", file=sys.stderr)
            os.unlink(local)


def log_tail(path: str | None, limit: int = 2000) -> str:
    """The end of an attempt's log, for the failure message."""
    if path and storage.is_uri(path):
        try:
            return storage.read_tail(path, limit).decode("utf-8", "replace")
        except Exception:
            return ""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            return handle.read().decode("utf-8", "replace")
    except (OSError, TypeError):
        return ""


class TaskError(Exception):
    """An attempt failed; `report` is what goes back to the coordinator."""

    def __init__(self, report: dict):
        super().__init__(report.get("message", ""))
        self.report = report


def run_task(job: Job, task: dict) -> dict:
    """Run one attempt and return its report; raises TaskError with the user-facing cause."""
    counters.reset()
    try:
        report = run_map(job, task) if task["kind"] == "map" else run_reduce(job, task)
    except TaskError:
        raise
    except Exception as exc:
        raise TaskError(failure_report(exc, job)) from None
    report["user_counters"] = counters.take()
    return report


def failure_report(exc: Exception, job: Job, location: str = "") -> dict:
    """What the coordinator is told about a failed attempt (and shows the user if it is the last)."""
    where = f" ({location})" if location else ""
    if isinstance(exc, shuffle.ShuffleReadError):
        return {"type": "ShuffleReadError", "message": str(exc), "traceback": "", "input": exc.path}
    if isinstance(exc, RecordError):
        # The framework noticed the mistake: show where in the user's code, if anywhere.
        return {"type": "RecordError", "message": f"{exc}{where}",
                "traceback": user_traceback(exc, job, user_frames_only=True)}
    report = describe_exception(exc, job)
    report["message"] += where
    return report


def run_map(job: Job, task: dict) -> dict:
    split = Split.from_wire(task["split"])
    bad_records = [] if task.get("skip_bad_records") else None
    for segment in split.segments:
        _check_readable(segment.path)
    _make_output_dir(task["out_dir"])
    if job.map_batches is not None:
        return run_map_batches(job, task, split)
    if _map_only(task):
        writer = part_writer(task["out_dir"], task["part"], task.get("output_format", "text"))
        try:
            # Pairs a job with a reducer would refuse are refused here too, with the same message.
            records_in = _map_split(
                job, split, lambda pairs: writer.write_pairs(shuffle.checked_as_shuffled(pairs), "mapper"),
                bad_records)
        except BaseException as exc:
            writer.close(exc)
            raise
        writer.close()
        return {"counters": {"map_input_records": records_in, "map_output_records": writer.records,
                             "output_records": writer.records,
                             "bad_records_skipped": len(bad_records or ())}}
    writer = shuffle.MapOutputWriter(task["out_dir"], task["partitions"], partitioner=job.partitioner,
                                     combiner=job.combiner)
    records_in = _map_split(job, split, writer.add_pairs, bad_records, writer.flush)
    result = writer.close()
    return {"files": {str(p): paths for p, paths in result.files.items()},
            "counters": {"map_input_records": records_in, "map_output_records": result.records_in,
                         "shuffle_records": result.records_out, "shuffle_bytes": result.bytes_written,
                         "bad_records_skipped": len(bad_records or ())}}


def _map_only(task: dict) -> bool:
    """Whether this map task writes part files rather than shuffle runs: the coordinator gives
    a number of partitions only when there are reducers, which a job with a reducer run with
    --reducers 0 has not (so its combiner and reducer go unused)."""
    return "partitions" not in task


def run_map_batches(job: Job, task: dict, split: Split) -> dict:
    """The vectorised map: Arrow batches through map_batches, Arrow aggregation, Arrow runs."""
    records_in = rows_out = 0
    tables = []
    aggregator = (vectorized.BatchAggregator(job.aggregation)
                  if vectorized.aggregates_on_map_side(job.aggregation) else None)
    writer = (part_writer(task["out_dir"], task["part"], task.get("output_format", "text"))
              if _map_only(task) else None)
    try:
        for path, values in read_blocks(split, job.input_format):
            records_in += len(values)
            try:
                output = vectorized.checked_output(
                    job.map_batches(vectorized.input_batch(path, values)), job.aggregation)
            except Exception as exc:
                raise TaskError(failure_report(exc, job, f"while mapping a batch of {path}")) from None
            rows_out += output.num_rows
            if writer is not None:
                # A REDUCE = "count" job's rows have no value: each row counts as 1.
                values = (output.column("value").to_pylist() if "value" in output.column_names
                          else repeat(1, output.num_rows))
                for key, value in zip(output.column("key").to_pylist(), values):
                    writer.write(key, value)
            elif aggregator is not None:
                aggregator.add(output)
            else:
                tables.append(output)
    except BaseException as exc:
        if writer is not None:
            writer.close(exc)
        raise
    counters = {"map_input_records": records_in, "map_output_records": rows_out}
    if writer is not None:
        writer.close()
        return {"counters": {**counters, "output_records": writer.records}}
    table = aggregator.result() if aggregator is not None else (pa.concat_tables(tables) if tables else None)
    files, written = ({}, 0) if table is None else vectorized.write_partitioned_runs(
        table, task["out_dir"], task["partitions"], job.partitioner, job.partition_batches)
    return {"files": {str(p): paths for p, paths in files.items()},
            "counters": {**counters, "shuffle_records": 0 if table is None else table.num_rows,
                         "shuffle_bytes": written}}


def _map_split(job: Job, split: Split, emit, bad_records: list | None = None, finish=None) -> int:
    """Feed every record of the split to the mapper and each record's output to `emit` (then call
    `finish`, which may still find a bad pair); returns the record count. A failure is annotated with
    the file and line being mapped, or with the record's that `records_ago` on the error points at."""
    mapper = job.mapper
    records = 0
    path, path_start = None, 0
    try:
        for key, value in read_records(split, job.input_format, bad_records):
            if key is not path:
                path, path_start = key, records
            records += 1
            output = mapper(key, value)
            emit(output if output is not None else ())    # one call per record: see records_ago
        if finish is not None:
            finish()
    except BadRecord as exc:
        raise TaskError({"type": "BadRecord", "traceback": "",
                         "message": f"{exc} (--skip-bad-records skips such records)"}) from None
    except Exception as exc:
        if path is None:
            raise
        number = records - path_start - getattr(exc, "records_ago", 0)
        location = (_record_location(split, job.input_format, path, number) if number > 0
                    else f"while mapping split {split.describe()}")
        raise TaskError(failure_report(exc, job, location)) from None
    return records


def _record_location(split: Split, input_format: str, path: str, number: int) -> str:
    if input_format == "files":
        return f"while mapping file {path}"
    start = next((s.start for s in split.segments if s.path == path), 0)
    where = f"line {number}" if start == 0 else f"line {number} of the split starting at byte {start}"
    return f"while mapping {path}, {where}"


def run_reduce(job: Job, task: dict) -> dict:
    _make_output_dir(task["out_dir"])
    writer = part_writer(task["out_dir"], task["partition"], task.get("output_format", "text"))
    if job.aggregation:
        return _reduce_aggregated(job, task, writer)
    groups = 0
    reducer = job.reducer
    try:
        for key, values in shuffle.iter_partition_groups(task["inputs"]):
            groups += 1
            output = reducer(key, values)
            if output is not None:
                writer.write_pairs(output, "reducer")
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()
    return {"counters": {"reduce_input_groups": groups, "output_records": writer.records}}


def _reduce_aggregated(job: Job, task: dict, writer: PartWriter) -> dict:
    try:
        for keys, values in vectorized.reduce_slices(task["inputs"], job.aggregation):
            writer.write_table(keys, values)
    except BaseException as exc:
        writer.close(exc)
        raise
    writer.close()
    return {"counters": {"output_records": writer.records}}


def _check_readable(path: str) -> None:
    if not storage.is_uri(path):
        if not os.access(path, os.R_OK):
            raise TaskError(_unreachable("cannot read the input file", path))
        return
    try:
        cause = None if storage.exists(path) else "it does not exist"
    except Exception as exc:
        cause = storage.describe_error(path, "read", exc).paragraph()
    if cause:
        import socket
        raise TaskError({"type": "Unreachable", "traceback": "",
                         "message": f"worker on host {socket.gethostname()} cannot read the input "
                                    f"'{path}' ({cause}); every worker needs the storage settings "
                                    f"the job was submitted with (AWS_* credentials, "
                                    f"AWS_ENDPOINT_URL)"})


def _make_output_dir(path: str) -> None:
    try:
        storage.ensure_dir(path)
    except Exception as exc:
        raise TaskError(_unreachable(f"cannot write ({getattr(exc, 'strerror', None) or exc})",
                                     path)) from None


def _unreachable(problem: str, path: str) -> dict:
    import socket
    return {"type": "Unreachable", "traceback": "",
            "message": f"worker on host {socket.gethostname()} {problem} '{path}': input, work "
                       f"and output directories must be reachable at the same path from every "
                       f"worker (one machine, or a shared filesystem)"}


def _is_user_frame(frame: traceback.FrameSummary) -> bool:
    return not os.path.abspath(frame.filename).startswith(_FRAMEWORK_DIRS)


def user_traceback(exc: BaseException, job: Job | None = None, user_frames_only: bool = False) -> str:
    """The traceback as the user wants it: their own frames only (all frames if none are theirs,
    since then it is a framework bug, unless user_frames_only)."""
    frames = [_with_job_source(f, job) for f in traceback.extract_tb(exc.__traceback__)]
    mine = [f for f in frames if _is_user_frame(f)]
    if not mine and user_frames_only:
        return ""
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(mine or frames),
             *traceback.format_exception_only(type(exc), exc)]
    return "".join(lines)


def _with_job_source(frame: traceback.FrameSummary, job: Job | None) -> traceback.FrameSummary:
    """Give a frame of the shipped job module back its file name and source line."""
    if frame.filename != "<dynamic-code>" or job is None or not job.source or not frame.lineno:
        return frame
    lines = job.source.splitlines()
    line = lines[frame.lineno - 1] if frame.lineno <= len(lines) else None
    return traceback.FrameSummary(job.source_path, frame.lineno, frame.name, line=line)


def describe_exception(exc: BaseException, job: Job | None = None) -> dict:
    return {"type": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}",
            "traceback": user_traceback(exc, job)}
