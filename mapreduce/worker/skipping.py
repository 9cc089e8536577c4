"""Skipping records that crash the job's code (the MapReduce paper, 4.6; Hadoop's SkipBadRecords).

With --skip-bad-records, a failed attempt's report names the record its mapper raised on (its
ordinal in the split, and where it is: file and line) or the key its reducer raised on (the key's
canonical bytes, and its repr). The scheduler counts those failures per task; once a record has
failed twice, the task's next attempts are told to skip it (the header's "skip": [[id, where]]),
and the attempt that commits lists what it skipped in its report ("skipped"), which the
coordinator writes to OUTPUT/_logs/skipped.
"""

from __future__ import annotations

from typing import Iterator

from mapreduce.inputs import Split
from mapreduce.inputs.text import lines_before
from mapreduce.jobspec import Job
from mapreduce.pairs import short_repr
from mapreduce.shuffle.ordering import key_bytes
from mapreduce.worker.failures import TaskError, failure_report


def skip_list(task: dict) -> dict:
    """The records this attempt must skip: id -> where (empty unless the scheduler said so)."""
    return {entry[0]: entry[1] for entry in task.get("skip") or () if len(entry) == 2}


def map_record(split: Split, input_format: str, path, ordinal: int, number: int, value) -> dict:
    """The report's "record" for the split's `ordinal`-th record (1-based), the `number`-th of
    file `path` in the split: its id and where it is, in words (file and line for text lines; for
    a split that starts inside a file, finding the line reads the file up to it, once)."""
    where = str(path)
    if input_format == "lines":
        segment = next((s for s in split.segments if s.path == path), None)
        try:
            before = lines_before(segment, 1 << 20) if segment is not None else 0
        except OSError:
            before = None
        line = number + before if before is not None else None
        where = f"{path}, line {line}" if line else f"{path}, record {number} of its split"
    elif input_format in ("jsonl", "csv", "parquet"):
        start = next((s.start for s in split.segments if s.path == path), 0)
        where = f"{path}, record {number}" + (f" of the split starting at {start}" if start else "")
    elif input_format == "pairs":
        where = f"the previous step's pair {short_repr(path)}"
    return {"id": ordinal, "where": f"{where}: {short_repr(value)}"}


def key_id(key) -> str:
    """A reduce key's identity across attempts and processes: its canonical bytes, in hex."""
    return key_bytes(key).hex()


def reduce_record(key) -> dict | None:
    try:
        return {"id": key_id(key), "where": f"key {short_repr(key)}"}
    except Exception:  # a key without canonical bytes cannot be skipped by identity
        return None


def groups_to_reduce(groups: Iterator, skip: dict, skipped: list) -> Iterator:
    """The partition's (key, values) groups minus the keys in `skip` (appended to `skipped`)."""
    if not skip:
        yield from groups
        return
    for key, values in groups:
        identity = reduce_record(key)
        if identity is not None and identity["id"] in skip:
            skipped.append(skip[identity["id"]])
            for _ in values:  # drained, so the merge moves on to the next key
                pass
            continue
        yield key, values


def reduce_failure(exc: Exception, job: Job, key) -> TaskError:
    """The failure of a reducer that raised on `key`: the usual report, naming the key, and what
    --skip-bad-records needs to skip the key if it fails again (unless it repeats anyway)."""
    report = failure_report(exc, job, f"while reducing key {short_repr(key)}")
    record = reduce_record(key)
    if record is not None and not report.get("permanent") and "input" not in report:
        report["record"] = {**record, "cause": f"{type(exc).__name__}: {exc}"}
    return TaskError(report)
