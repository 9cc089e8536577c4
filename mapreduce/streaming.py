"""Streaming executables (Hadoop Streaming): a mapper, combiner or reducer that is a command.

`mapreduce run --mapper-cmd CMD [--combiner-cmd CMD] [--reducer-cmd CMD] INPUT... -o DIR`, or
`MAPPER_CMD`, `COMBINER_CMD`, `REDUCER_CMD` in a job module. A command is run by the shell
(`/bin/sh -c CMD`) once per task attempt, in the task's working directory. It reads lines on
stdin and writes `key<TAB>value` lines on stdout; a line without a tab is a key with an empty
value. The mapper gets the input's lines; the reducer gets its partition's pairs as
`key<TAB>value` lines sorted by key (Hadoop Streaming's contract: one line per value, a key's
lines together), the combiner a map task's pairs with each key's lines together. Keys and values
it writes are str. A command that exits non-zero fails the attempt, with the end of what it
wrote on stderr in the message (what it writes on stderr also goes to the task's log).

Each command is one `Stage`: its `start` (the task's *_init hook) starts the process and a thread
that reads its stdout, `feed` (the mapper, combiner or reducer) writes lines to its stdin and hands
back the pairs read so far, and `finish` (the *_final hook) closes stdin, waits for the process
and hands back the rest. The framework calls them like any job's hooks.
"""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
from typing import Iterator

from .output import format_field
from .worker.lifetime import die_with_parent

STDERR_TAIL_BYTES = 4096  # of a failed command's stderr, shown in the error
ROLES = ("mapper", "combiner", "reducer")
MODULE_SETTINGS = {"mapper": "MAPPER_CMD", "combiner": "COMBINER_CMD", "reducer": "REDUCER_CMD"}


class StreamingCommandError(RuntimeError):
    """A streaming command failed: it exited non-zero, or could not be started."""


class Stage:
    """One streaming command in one task attempt (see the module's docstring)."""

    def __init__(self, role: str, command: str):
        self.role, self.command = role, command
        self._reset()

    def _reset(self) -> None:
        self._input_file: str | None = None
        self._process: subprocess.Popen | None = None
        self._lines: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list = []
        self._stderr_tail: collections.deque = collections.deque()
        self._stdin_closed = False

    def reset(self) -> None:
        """The mapper's *_init: nothing runs until the first record says which file it is in."""
        self._reset()

    def __getstate__(self):  # shipped to workers before it starts: only what it is
        return {"role": self.role, "command": self.command}

    def __setstate__(self, state):
        self.role, self.command = state["role"], state["command"]
        self._reset()

    # -- the hooks ---------------------------------------------------------------------------------

    def start(self, input_file: str | None = None) -> None:
        self._reset()  # a fresh attempt in a process that ran one before
        env = None
        if input_file is not None:  # what Hadoop Streaming tells a mapper about its input
            env = {**os.environ, "mapreduce_map_input_file": input_file}
            env["map_input_file"] = input_file
        self._input_file = input_file
        try:
            self._process = subprocess.Popen(
                self.command,
                shell=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                # Killed with the task's process if that is killed (its worker died, say).
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            raise StreamingCommandError(
                f"the {self.role} command `{self.command}` could not be started: {exc}"
            ) from None
        for target, stream in (
            (self._read_stdout, self._process.stdout),
            (self._read_stderr, self._process.stderr),
        ):
            thread = threading.Thread(target=target, args=(stream,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def feed_record(self, key, value) -> Iterator[tuple]:
        """The mapper: one input line (the value) to the command. As in Hadoop Streaming, the
        command sees its input file's path in $mapreduce_map_input_file (and the older
        $map_input_file); a task whose split holds several files runs it once per file."""
        if key != self._input_file:
            return self._next_file(key, value)
        self._write(_line(value))
        return self._ready()

    def _next_file(self, key, value) -> Iterator[tuple]:
        done = list(self.finish()) if self._process is not None else []
        self.start(str(key))
        self._write(_line(value))
        return iter(done + list(self._ready()))

    def feed_group(self, key, values) -> Iterator[tuple]:
        """The combiner or reducer: a key's values as key<TAB>value lines."""
        prefix = format_field(key) + "\t"
        self._write("".join(prefix + format_field(value) + "\n" for value in values))
        return self._ready()

    def finish(self) -> Iterator[tuple]:
        """Close stdin, wait for the command and hand back the rest of its output; a non-zero
        exit raises StreamingCommandError with the end of its stderr."""
        if self._process is None:
            if self.role != "mapper":
                return iter(())
            self.start()  # a map task without records still runs its mapper, as Hadoop's
        process = self._process
        assert process is not None
        self._close_stdin()
        status = process.wait()
        for thread in self._threads:
            thread.join()
        pairs = list(self._ready())
        if status != 0:
            raise StreamingCommandError(self._failure(status))
        return iter(pairs)

    # -- the process -------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self._stdin_closed or self._process is None or self._process.stdin is None:
            return
        try:
            self._process.stdin.write(text.encode("utf-8", "surrogateescape"))
        except (BrokenPipeError, ValueError):
            # The command stopped reading (`head`, or it failed): its exit status decides.
            self._stdin_closed = True

    def _close_stdin(self) -> None:
        if not self._stdin_closed and self._process is not None and self._process.stdin:
            self._stdin_closed = True
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass

    def _read_stdout(self, stream) -> None:
        for raw in stream:
            self._lines.put(raw)
        stream.close()

    def _read_stderr(self, stream) -> None:
        size = 0
        for raw in stream:
            sys.stderr.write(raw.decode("utf-8", "replace"))  # to the task's log
            self._stderr_tail.append(raw)
            size += len(raw)
            while size > STDERR_TAIL_BYTES and len(self._stderr_tail) > 1:
                size -= len(self._stderr_tail.popleft())
        stream.close()

    def _ready(self) -> Iterator[tuple]:
        lines = self._lines
        while True:
            try:
                raw = lines.get_nowait()
            except queue.Empty:
                return
            yield _pair(raw)

    def _failure(self, status: int) -> str:
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        tail = b"".join(self._stderr_tail).decode("utf-8", "replace").rstrip()
        what = f"; the end of its stderr:\n{tail}" if tail else " and wrote nothing on stderr"
        return f"the {self.role} command `{self.command}` {how}{what}"


def _line(value) -> str:
    text = value if isinstance(value, str) else format_field(value)
    return text + "\n"


def _pair(raw: bytes) -> tuple:
    text = raw.decode("utf-8", "replace").rstrip("\n")
    if text.endswith("\r"):
        text = text[:-1]
    key, _, value = text.partition("\t")
    return key, value


def job_functions(commands: dict) -> dict:
    """The job functions and hooks that run `commands` ({"mapper": CMD, ...}, any of the three
    roles): for each, the role's function and its *_init and *_final hooks."""
    functions: dict = {}
    for role, command in commands.items():
        if command is None:
            continue
        stage = Stage(role, command)
        functions[role] = stage.feed_record if role == "mapper" else stage.feed_group
        # The mapper's process starts with its first record (it is told the record's file).
        functions[f"{role}_init"] = stage.reset if role == "mapper" else stage.start
        functions[f"{role}_final"] = stage.finish
    return functions
