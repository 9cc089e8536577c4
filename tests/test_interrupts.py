"""SIGINT and SIGTERM while a command's loop runs: never lost, even when the exception they raise
lands in a destructor (where Python prints it and drops it)."""

from __future__ import annotations

import signal

import pytest

from mapreduce import interrupts


class _RaisesSignalWhenCollected:
    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self):
        # The handler runs here, so its exception is raised in a destructor: Python drops it.
        signal.raise_signal(self.signum)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "signum, raised",
    [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, interrupts.Terminated)],
)
def test_a_signal_whose_exception_a_destructor_dropped_is_raised_again_by_check(signum, raised):
    before = signal.getsignal(signum)
    with interrupts.Noted() as signals:
        signals.check()  # nothing noted yet: nothing raised
        _RaisesSignalWhenCollected(signum)  # collected at once; its exception is dropped
        with pytest.raises(raised):
            signals.check()
    assert signal.getsignal(signum) is before  # the previous handler is back


def test_a_signal_raises_at_once_as_before():
    with interrupts.Noted(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_an_ignored_sigint_stays_ignored_and_sigterm_still_raises():
    """A command started in the background by a shell has SIGINT ignored: the terminal's Ctrl-C
    is not for it, so Noted leaves that alone (SIGTERM is taken over as before)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.Noted() as signals:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)  # ignored: nothing raised, nothing noted
            signals.check()
            with pytest.raises(interrupts.Terminated):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
