"""The coordinator's journal: every state change it accepts, so a restart loses nothing.

The coordinator appends a record when it accepts a job, assigns an attempt, re-plans a map task,
publishes a task's output, starts a job's commit and ends a job (and when a job's files are
cleaned up). On start it replays them (`fold`): running jobs continue where they were, published
map outputs are reused, and finished jobs are history for `status`. Then it rewrites the journal
compacted (`rewrite`): running jobs as they stand, the last finished jobs as one summary record
each.

Format (version 1): UTF-8 lines `<crc32 of the JSON, 8 hex digits> <JSON object>`, the first a
header `{"type": "journal", "version": 1}`. A crash can cut the last line short, and a disk can
damage any: replay stops at the first line that is incomplete or fails its checksum, keeps what
came before, and says in one log line what it ignored. A journal of a newer version is refused.

Where it lives: under the coordinator's work directory. On a local filesystem it is one file,
appended to and locked against a second coordinator; the records of one loop iteration go out
in one write at its end (`flush`), or earlier, before a TASK they are about leaves
(`write_through`: then they survive the process's crash), and `sync` (an fsync, so it survives a power cut too) is
called where someone outside is told something: before a client learns its job id, before a
commit starts and when a job ends. A lost assignment or publish record costs a task re-run. On an
object store, which cannot append, it is a sequence of numbered objects, one per `flush`, each
holding a batch of lines; a compacted journal is a new object that starts with a snapshot header,
after which the older objects are deleted.

Terms (standby coordinators, `--elect`): a coordinator that won an election writes a journal of
its own term (the election's revision, larger for every later leader): the file
`coordinator.journal.<term>` or the objects `<term>-<n>.jrnl`. It replays the newest journal of an
older term, then rewrites it compacted into its own, and deletes the older ones. A former leader
that was only paused therefore writes, at worst, into a journal nobody reads any more; and
`fence` (the leadership's check, called before every write) stops it at once anyway. Without an
election the term is 0: the file `coordinator.journal` and objects `<n>.jrnl`, as before.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from typing import Callable

from .. import defaults, protocol, storage
from ..errors import MapReduceError

log = logging.getLogger("mapreduce.coordinator")

VERSION = 1
LOCAL_NAME = "coordinator.journal"
OBJECTS_DIR = "journal"


class JournalError(MapReduceError):
    """The journal cannot be used: another coordinator holds it, or a newer version wrote it."""


# ---- records ------------------------------------------------------------------------------------


def encode(record: dict) -> bytes:
    body = protocol.json_bytes(record)  # compact, keys in the record's order
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_lines(data: bytes, where: str) -> tuple[list[dict], str | None]:
    """The records of a run of lines, up to the first bad one; and a sentence about the rest
    (None when every line was whole and sound)."""
    records: list[dict] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            return records, (
                f"{where}: ignored a record cut short at byte {offset} "
                f"({len(data) - offset} bytes, probably a crash while writing it)"
            )
        line = data[offset:end]
        try:
            checksum, body = line.split(b" ", 1)
            if int(checksum, 16) != zlib.crc32(body):
                raise ValueError("checksum mismatch")
            record = json.loads(body)
            if not isinstance(record, dict) or not isinstance(record.get("type"), str):
                raise ValueError("not a record")
        except ValueError as exc:
            return records, (
                f"{where}: ignored everything from byte {offset} on ({len(data) - offset} bytes): "
                f"a damaged record ({exc})"
            )
        records.append(record)
        offset = end + 1
    return records, None


def header(snapshot: bool = False) -> dict:
    return {"type": "journal", "version": VERSION, "snapshot": snapshot}


def check_header(record: dict, where: str) -> None:
    version = record.get("version")
    if record.get("type") != "journal" or not isinstance(version, int):
        raise JournalError(
            f"'{where}' is not a mapreduce coordinator journal (its first record is not a "
            f"journal header). Move it away, or start the coordinator with another --work-dir."
        )
    if version > VERSION:
        raise JournalError(
            f"the journal '{where}' was written by a newer mapreduce (journal format version "
            f"{version}; this one reads version {VERSION} and older). Run the newer version, or "
            f"start this one with another --work-dir."
        )


# ---- backends -----------------------------------------------------------------------------------


class LocalJournal:
    """One file, appended to; an exclusive lock keeps a second coordinator out. With a term (an
    elected leader) the election keeps the others out, and the file is the term's own."""

    def __init__(self, work_dir: str, term: int = 0, fence: Callable[[], None] | None = None):
        self.work_dir = work_dir
        self.term = term
        self.fence = fence or (lambda: None)
        self.path = local_path(work_dir, term)
        self._file = open(self.path, "ab+")
        self._pending: list[bytes] = []  # appended, not yet written (write_through)
        if term == 0:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.close()
                raise JournalError(
                    f"another coordinator is using the work directory '{work_dir}' (its journal "
                    f"'{self.path}' is locked). Stop that one first, or give this one another "
                    f"--work-dir."
                ) from None
        self._dirty = False
        self._appended = 0

    def needs_compaction(self) -> bool:
        return self._appended >= defaults.JOURNAL_COMPACT_RECORDS

    def _sources(self) -> list[tuple[int, str]]:
        """The journal files of terms up to ours, oldest term first."""
        found = []
        for name in os.listdir(self.work_dir):
            if name == LOCAL_NAME:
                found.append((0, os.path.join(self.work_dir, name)))
            elif name.startswith(LOCAL_NAME + ".") and name[len(LOCAL_NAME) + 1 :].isdigit():
                term = int(name[len(LOCAL_NAME) + 1 :])
                if term <= self.term:
                    found.append((term, os.path.join(self.work_dir, name)))
        return sorted(found)

    def read(self) -> tuple[list[dict], str | None]:
        """Our own file if it has anything, else the newest one of an older term."""
        self.write_through()
        self._file.seek(0)
        data, path = self._file.read(), self.path
        if not data:
            for _, older in reversed(self._sources()):
                if older != self.path and os.path.getsize(older):
                    with open(older, "rb") as handle:
                        data, path = handle.read(), older
                    break
        records, damage = decode_lines(data, path)
        if records:
            check_header(records[0], path)
        elif data and damage is None:
            damage = f"{path}: no journal header"
        return records, damage

    def append(self, record: dict) -> None:
        """Kept until `write_through`, `flush` or `sync`: the coordinator writes what one poll
        iteration appended in one write, and before any TASK its records are about leaves."""
        self.fence()
        self._pending.append(encode(record))
        self._appended += 1

    def write_through(self) -> None:
        """What was appended reaches the operating system now: it survives the process's crash."""
        if self._pending:
            self.fence()
            self._file.write(b"".join(self._pending))
            self._file.flush()
            self._pending = []
            self._dirty = True

    def flush(self) -> None:
        self.write_through()

    def sync(self) -> None:
        """Make what was appended durable (it survives a power cut too)."""
        self.write_through()
        if self._dirty:
            self.fence()
            os.fsync(self._file.fileno())
            self._dirty = False

    def rewrite(self, records: list[dict]) -> None:
        """Replace the whole journal by `records` (after a header), atomically; the journals of
        older terms go."""
        self.fence()
        self._pending = []  # the records replace whatever was appended
        older = [path for _, path in self._sources() if path != self.path]
        with storage.atomic_write(self.path) as handle:
            handle.write(encode(header(snapshot=True)))
            for record in records:
                handle.write(encode(record))
        # The lock stays with the old inode; take it on the new file before appending there.
        replacement = open(self.path, "ab+")
        if self.term == 0:
            fcntl.flock(replacement, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file.close()
        self._file = replacement
        self._dirty = False
        self._appended = 0
        if self.term:
            for path in older:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        self.sync()
        self._file.close()

    def abandon(self) -> None:
        """Let go without writing anything more (the leadership was lost)."""
        self._file.close()


def local_path(work_dir: str, term: int) -> str:
    return os.path.join(work_dir, LOCAL_NAME if term == 0 else f"{LOCAL_NAME}.{term}")


class ObjectJournal:
    """Numbered objects under `<work dir>/journal/`, one per sync (an object store cannot
    append): `00000000000000000001.jrnl`, ... (with a term: `<term>-<n>.jrnl`). Replay starts at
    the newest snapshot of the newest term up to ours."""

    def __init__(self, work_dir: str, term: int = 0, fence: Callable[[], None] | None = None):
        self.location = storage.join(work_dir, OBJECTS_DIR)
        self.term = term
        self.fence = fence or (lambda: None)
        self._pending: list[bytes] = []
        self._next = 1
        self._written = 0  # objects written since the last snapshot

    def needs_compaction(self) -> bool:
        return self._written >= defaults.JOURNAL_COMPACT_OBJECTS

    def _objects(self) -> list[tuple[int, int, str]]:
        """(term, number, location) of the journal objects of terms up to ours, in order."""
        try:
            listed = storage.list_files(self.location)
        except FileNotFoundError:
            return []
        found = []
        for location, name, _ in listed:
            stem = name.rsplit("/", 1)[-1]
            if not stem.endswith(".jrnl"):
                continue
            term, _, number = stem[:-5].rpartition("-")
            if number.isdigit() and (term.isdigit() or not term):
                if int(term or 0) <= self.term:
                    found.append((int(term or 0), int(number), location))
        return sorted(found)

    def read(self) -> tuple[list[dict], str | None]:
        objects = self._objects()
        ours = [number for term, number, _ in objects if term == self.term]
        self._next = ours[-1] + 1 if ours else 1
        if objects:
            newest = objects[-1][0]
            objects = [entry for entry in objects if entry[0] == newest]
        batches = []
        for _, _, location in objects:
            with storage.open_input_stream(location) as stream:
                batches.append((location, stream.read()))
        start = 0
        for index, (location, data) in enumerate(batches):
            first, _ = decode_lines(data.split(b"\n", 1)[0] + b"\n", location)
            if first and first[0].get("type") == "journal" and first[0].get("snapshot"):
                start = index
        records: list[dict] = []
        for index, (location, data) in enumerate(batches[start:]):
            batch, damage = decode_lines(data, location)
            if index == 0 and batch:
                check_header(batch[0], location)
            elif batch and batch[0].get("type") == "journal":
                batch = batch[1:]
            records.extend(batch)
            if damage is not None:
                return records, damage
        return records, None

    def append(self, record: dict) -> None:
        self.fence()
        self._pending.append(encode(record))

    def write_through(self) -> None:
        """Nothing before the next flush (once per poll iteration): an object per TASK would be
        too many."""

    def flush(self) -> None:
        """Write what was appended since the last flush, as one object."""
        if not self._pending:
            return
        self.fence()
        data = b"".join(self._pending)
        if self._next == 1:
            data = encode(header()) + data
        self._write(data)
        self._pending = []

    def sync(self) -> None:
        """An object, once written, is durable."""
        self.flush()

    def rewrite(self, records: list[dict]) -> None:
        self.fence()
        older = self._objects()
        self._pending = []
        self._write(encode(header(snapshot=True)) + b"".join(encode(r) for r in records))
        for _, _, location in older:
            storage.delete_file(location)
        self._written = 0

    def _write(self, data: bytes) -> None:
        name = (
            f"{self._next:020d}.jrnl" if self.term == 0 else f"{self.term}-{self._next:020d}.jrnl"
        )
        location = storage.join(self.location, name)
        with storage.atomic_write(location) as handle:
            handle.write(data)
        self._next += 1
        self._written += 1

    def close(self) -> None:
        self.sync()

    def abandon(self) -> None:
        """Let go without writing anything more (the leadership was lost)."""
        self._pending = []


Journal = LocalJournal | ObjectJournal


def open_journal(work_dir: str, term: int = 0, fence: Callable[[], None] | None = None) -> Journal:
    """The coordinator's journal under `work_dir`; with a term (an elected leader) the term's
    own, guarded by `fence` (raises once the leadership is lost)."""
    backend = ObjectJournal if storage.is_uri(work_dir) else LocalJournal
    return backend(work_dir, term, fence)


# ---- what the records add up to -----------------------------------------------------------------


@dataclass
class JobHistory:
    """One job as the journal tells it."""

    id: str
    submitted: dict | None = None  # the "submitted" record (None: only its summary was kept)
    attempts: dict = field(default_factory=dict)  # task id -> attempts started
    published: dict = field(default_factory=dict)  # task id -> (attempt, result)
    replanned: list = field(default_factory=list)  # map task ids re-planned, in order
    committing: bool = False
    ended: dict | None = None  # the "ended" record
    cleaned: bool = False


def fold(records: list[dict]) -> dict[str, JobHistory]:
    """Replay: the jobs the records describe, in submission order. Pure: no I/O."""
    jobs: dict[str, JobHistory] = {}
    for record in records:
        kind, job_id = record.get("type"), record.get("job")
        if kind == "journal" or not isinstance(job_id, str):
            continue
        job = jobs.get(job_id)
        if kind == "submitted":
            jobs[job_id] = JobHistory(job_id, submitted=record)
        elif kind == "ended":
            job = jobs.setdefault(job_id, JobHistory(job_id))
            job.ended = record
        elif job is None:
            continue  # about a job whose start was compacted away: nothing to restore
        elif kind == "attempts":
            job.attempts[record["task"]] = max(job.attempts.get(record["task"], 0), record["count"])
        elif kind == "assigned":
            task = record["task"]
            job.attempts[task] = max(job.attempts.get(task, 0), record["attempt"])
        elif kind == "published":
            job.published[record["task"]] = (record["attempt"], record.get("result") or {})
        elif kind == "replanned":
            if record["task"] not in job.replanned:
                job.replanned.append(record["task"])
        elif kind == "map_lost":
            job.published.pop(record["task"], None)
        elif kind == "committing":
            job.committing = True
        elif kind == "cleaned":
            job.cleaned = True
    return jobs


def compacted(jobs: dict[str, JobHistory], finished_kept: int) -> list[dict]:
    """The records that replay to the same running jobs and the last `finished_kept` finished
    ones (those as their summaries only, without job code)."""
    out: list[dict] = []
    finished = [job for job in jobs.values() if job.ended is not None]
    kept = {job.id for job in finished[max(0, len(finished) - finished_kept) :]}
    for job in jobs.values():
        if job.ended is not None:
            if job.id in kept:
                out.append(job.ended)
                if job.cleaned:
                    out.append({"type": "cleaned", "job": job.id})
            continue
        if job.submitted is None:
            continue
        out.append(job.submitted)
        for task in job.replanned:  # first: the other records may be about their pieces
            out.append({"type": "replanned", "job": job.id, "task": task})
        for task, count in sorted(job.attempts.items()):
            out.append({"type": "attempts", "job": job.id, "task": task, "count": count})
        for task, (attempt, result) in sorted(job.published.items()):
            out.append(
                {
                    "type": "published",
                    "job": job.id,
                    "task": task,
                    "attempt": attempt,
                    "result": result,
                }
            )
        if job.committing:
            out.append({"type": "committing", "job": job.id})
    return out


def encode_code(code: bytes) -> str:
    return base64.b64encode(code).decode("ascii")


def decode_code(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))
