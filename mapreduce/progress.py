"""Progress while a job runs (on a terminal only) and the summary when it ends."""

from __future__ import annotations

import sys
import time

from .skew import skew_lines
from .steps import shown_output

REFRESH_S = 0.25


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _describe(snapshot: dict) -> str:
    parts = [f"map {snapshot['maps_done']}/{snapshot['maps']}"]
    if snapshot["reduces"]:
        parts.append(f"reduce {snapshot['reduces_done']}/{snapshot['reduces']}")
    parts.append(f"workers {snapshot['workers']}")
    if snapshot["failed"] or snapshot["lost"]:
        parts.append(f"failed attempts {snapshot['failed']}, lost {snapshot['lost']}")
    parts.append(f"{snapshot['elapsed']:.1f}s")
    return "  ".join(parts)


class ProgressReporter:
    def __init__(self, stream=None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.live = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._width = 0

    def update(self, snapshot: dict, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self._last < REFRESH_S):
            return
        self._last = now
        line = _describe(snapshot)
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def warn(self, message: str) -> None:
        """A warning for the user running the job, shown even with --quiet."""
        self.clear()
        self.stream.write(f"mapreduce: warning: {message}\n")
        self.stream.flush()

    def summary(self, snapshot: dict, counters: dict, output_dir: str) -> None:
        self.clear()
        if self.quiet:
            return
        attempts = _plural(snapshot["attempts"], "attempt")
        extras = [f"{snapshot[k]} {k}" for k in ("failed", "lost") if snapshot[k]]
        if snapshot["backups"]:
            extras.append(_plural(snapshot["backups"], "backup"))
        if extras:
            attempts += f" ({', '.join(extras)})"
        tasks = _plural(snapshot["maps"], "map task")
        if snapshot["reduces"]:
            tasks += " + " + _plural(snapshot["reduces"], "reduce task")
        counted = counter_lines(counters)
        lines = [
            f"done in {snapshot['elapsed']:.2f}s: {tasks}, {attempts}",
            counted[0],
            f"output: {shown_output(output_dir)}",  # a step's scratch directory: named as such
            *counted[1:],
            *skew_lines(snapshot.get("skew")),
        ]
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()


def counter_lines(counters: dict) -> list:
    """The records line, then one line per user counter group (the summary and `status` show them)."""
    lines = [
        f"records: {counters.get('map_input_records', 0)} in, "
        f"{counters.get('map_output_records', 0)} mapped, "
        f"{counters.get('output_records', 0)} out"
        + (
            f", {counters['bad_records_skipped']} malformed skipped"
            if counters.get("bad_records_skipped")
            else ""
        )
        + (
            f", {counters['records_skipped']} skipped after crashing the job's code"
            if counters.get("records_skipped")
            else ""
        )
        + (
            " (listed in _logs/skipped)"
            if counters.get("records_skipped") or counters.get("bad_records_skipped")
            else ""
        )
    ]
    for group, names in sorted((counters.get("user") or {}).items()):
        lines.append(
            f"counters {group}: "
            + ", ".join(f"{name}={total}" for name, total in sorted(names.items()))
        )
    return lines
