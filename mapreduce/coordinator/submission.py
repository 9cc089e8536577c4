"""What a client sends to run a job: plain data, checked field by field on arrival."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .. import defaults, storage
from ..errors import MapReduceError, ProtocolError
from ..inputs import Split, cut_split
from ..output import OUTPUT_FORMATS


@dataclass
class JobSubmission:
    """Everything the coordinator needs to run a job; plain data, the job code as opaque bytes."""

    name: str
    job_code: bytes
    splits: list  # Split.to_wire() dicts
    split_descriptions: list  # for messages: where each map task reads
    num_reducers: int  # 0 for a map-only job
    output_dir: str
    overwrite: bool = False
    max_attempts: int = defaults.MAX_ATTEMPTS
    max_losses: int = defaults.MAX_LOST_ATTEMPTS
    output_format: str = "text"
    skip_bad_records: bool = False
    max_skipped: int = defaults.MAX_SKIPPED_RECORDS  # with skip_bad_records: fail beyond it
    # A multi-step job's last step: what the earlier steps skipped, for OUTPUT/_logs/skipped.
    skipped_earlier: list = field(default_factory=list)
    inputs: list = field(default_factory=list)  # the inputs as given (absolute): for path checks
    # How the input format's files may be cut (inputs.readers: "line" at any byte, "file" never,
    # "row group"): a task that keeps losing its process is re-planned within these limits.
    split_by: str = "file"
    # The map side's buffer: a sorted spill every this many bytes (estimated) or records.
    sort_buffer: int = defaults.SORT_BUFFER_BYTES
    spill_records: int = defaults.SPILL_RECORDS

    def to_wire(self) -> tuple[dict, bytes]:
        # Shallow (not asdict's deep copy of every split): it is only encoded, never changed.
        header = {f.name: getattr(self, f.name) for f in fields(self)}
        return header, header.pop("job_code")

    @classmethod
    def from_wire(cls, header: dict, job_code: bytes) -> "JobSubmission":
        """Rebuild a client's submission; raises ProtocolError when a field is missing or mistyped."""
        types = {
            "name": str,
            "splits": list,
            "split_descriptions": list,
            "num_reducers": int,
            "output_dir": str,
            "overwrite": bool,
            "max_attempts": int,
            "max_losses": int,
            "output_format": str,
            "skip_bad_records": bool,
            "max_skipped": int,
            "skipped_earlier": list,
            "inputs": list,
            "split_by": str,
            "sort_buffer": int,
            "spill_records": int,
        }
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name == "job_code":
                continue
            if item.name not in header:
                if item.name in (
                    "overwrite",
                    "max_attempts",
                    "max_losses",
                    "output_format",
                    "skip_bad_records",
                    "max_skipped",
                    "skipped_earlier",
                    "inputs",
                    "split_by",
                    "sort_buffer",
                    "spill_records",
                ):
                    continue
                raise ProtocolError(f"job submission lacks '{item.name}'")
            value = header[item.name]
            if not isinstance(value, types[item.name]) or (
                types[item.name] is int and isinstance(value, bool)
            ):
                raise ProtocolError(f"job submission field '{item.name}' has the wrong type")
            values[item.name] = value
        if len(values["splits"]) != len(values["split_descriptions"]):
            raise ProtocolError("job submission has as many splits as split descriptions")
        if values.get("max_skipped", 0) < 0:
            raise ProtocolError("job submission has a negative max_skipped")
        if min(values.get("sort_buffer", 1), values.get("spill_records", 1)) < 1:
            raise ProtocolError("job submission has a map buffer of less than 1 byte or record")
        if values["num_reducers"] < 0 or values.get("max_attempts", 1) < 1:
            raise ProtocolError("job submission has a negative reducer count or no attempts")
        if values.get("output_format", "text") not in (*OUTPUT_FORMATS, "arrow"):
            raise ProtocolError(f"unknown output format {values['output_format']!r}")
        if not all(isinstance(item, str) for item in values.get("skipped_earlier", [])):
            raise ProtocolError("job submission field 'skipped_earlier' must list lines")
        if not all(isinstance(item, str) for item in values.get("inputs", [])):
            raise ProtocolError("job submission field 'inputs' must list paths")
        return cls(job_code=job_code, **values)

    def skipping(self) -> dict:
        """The scheduler's settings for --skip-bad-records (Scheduler.add_job's keywords)."""
        return {"skip_bad_records": self.skip_bad_records, "max_skipped": self.max_skipped}

    def cut(self, wire: dict) -> list:
        """The scheduler's `cut` for this job: a split (wire form) -> its pieces [(split, where)],
        as inputs.cut_split gives them ([] when it cannot be cut, or does not parse)."""
        try:
            pieces = cut_split(Split.from_wire(wire), self.split_by)
        except (ProtocolError, ValueError, TypeError):  # a malformed split: run it as it is
            return []
        return [(piece.to_wire(), piece.describe()) for piece in pieces]

    def read_paths(self) -> list:
        """Every location the job reads: the inputs as given and every file the splits read
        (a client could name one input and splits of another)."""
        segments = {
            segment[0]
            for split in self.splits
            if isinstance(split, dict)
            for segment in split.get("segments") or ()
            if isinstance(segment, (list, tuple)) and segment and isinstance(segment[0], str)
        }
        return sorted(set(self.inputs) | segments)

    def input_paths(self) -> list:
        """The inputs as given, or (from an older client) every file the splits read."""
        return self.inputs or sorted(
            {segment[0] for split in self.splits for segment in split.get("segments", [])}
        )


def outside_prefixes(location: str, prefixes: list) -> bool:
    """True unless `location` is one of `prefixes` or lies below one: local paths compared where
    they really are (`..` and symlinks resolved), URIs by scheme, bucket and path, always on whole
    path components (/data2 is not under /data)."""
    location = storage.normalize(location)
    return not any(storage.is_within(location, prefix) for prefix in prefixes)


def check_allowed_paths(submission: JobSubmission, prefixes: list) -> None:
    """Refuse a job that would read or write outside the coordinator's --allow-path prefixes
    (none given: anywhere), naming the first such path."""
    if not prefixes:
        return
    wanted = [("input", path) for path in submission.read_paths()]
    wanted.append(("output", submission.output_dir))
    for what, location in wanted:
        try:
            outside = outside_prefixes(location, prefixes)
        except (ValueError, OSError) as exc:
            raise MapReduceError(
                f"the job's {what} '{location}' is not a usable path: {exc}"
            ) from None
        if outside:
            raise MapReduceError(
                f"the job's {what} '{location}' is outside the paths this coordinator allows "
                f"jobs to use ({', '.join(prefixes)}; `mapreduce coordinator --allow-path`). "
                f"Nothing was run or changed: use inputs and an output under one of them."
            )
