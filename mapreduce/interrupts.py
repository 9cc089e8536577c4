"""SIGINT and SIGTERM: what they raise, and holding them over a step that must not be cut in half.

A job's commit (write `_SUCCESS`, swap staging in, remove the old output) must end in one of two
states, the old output or the new one, and the command must say which. So the signals are held
while it runs and delivered, to whatever handlers were in place, right after it: the code that
catches them then looks at what the commit did.
"""

from __future__ import annotations

import contextlib
import signal
import threading

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """Raised by `raise_terminated` on SIGTERM. A BaseException, like KeyboardInterrupt, so that
    code catching Exception (to fail one job and keep serving) never swallows it."""


def raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def held(deliver: bool = True):
    """Run the block with SIGINT and SIGTERM held; those that arrived are delivered on leaving it
    (or dropped with `deliver=False`: for the steps that stop a command a signal already stopped).
    Signal handlers belong to the main thread: elsewhere this holds nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {}
    for signum in HELD_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:  # None: installed outside Python; leave it alone
            previous[signum] = signal.signal(signum, lambda number, frame: arrived.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number in dict.fromkeys(arrived) if deliver else ():
            signal.raise_signal(number)


class Noted:
    """SIGINT and SIGTERM raise KeyboardInterrupt and Terminated, as usual, and are noted too,
    for a loop to `check()` at a point of its own. A signal's exception is raised wherever the
    main thread is, and when that is a destructor (pyzmq checks for signals when it closes a
    received zmq.Frame) Python prints the exception and drops it: without the note, that Ctrl-C
    would be lost and the job would run on. Use as a context manager: it installs the handlers
    and puts the previous ones back. SIGINT is taken over only from Python's default handler:
    an ignored SIGINT (a job started in the background by a shell) or a caller's own handler is
    left as it is, as is a handler installed outside Python."""

    def __init__(self):
        self.noted: list[int] = []
        self._previous: dict = {}

    def __enter__(self) -> Noted:
        for signum in HELD_SIGNALS:
            current = signal.getsignal(signum)
            if current is None or (
                signum == signal.SIGINT and current is not signal.default_int_handler
            ):
                continue
            self._previous[signum] = signal.signal(signum, self._raise)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _raise(self, signum, frame):
        self.noted.append(signum)
        _raise_for(signum)

    def check(self) -> None:
        """Raise what a noted signal raised (again: it may have been dropped), if any."""
        if self.noted:
            _raise_for(self.noted[-1])


def _raise_for(signum: int):
    if signum == signal.SIGINT:
        raise KeyboardInterrupt()
    raise Terminated()
