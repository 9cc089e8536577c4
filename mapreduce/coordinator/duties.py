"""The coordinator's timed duties: what it does because time passed, not because a message came.

After every poll the loop hands the clock here. A time the loop did not listen (a stopped
process) is given back to the workers before anyone is declared dead for it; ten times a
heartbeat interval, the scheduler acts on elapsed time (silent workers declared dead and their
attempts run elsewhere, backups for stragglers) and heartbeats go to the workers that were sent
nothing for an interval.
"""

from __future__ import annotations

import logging
from typing import Callable

from .. import protocol
from ..logformat import about
from .state import CoordinatorState
from .workers import log_lost_attempts

log = logging.getLogger("mapreduce.coordinator")


class TimedDuties:
    def __init__(self, state: CoordinatorState, carry_out: Callable[[list], None]):
        self.state = state
        self.carry_out = carry_out  # the Executor's: the scheduler's instructions carried out
        self.due_at = 0.0  # when the clock's duties are next looked at (`run`)

    def not_listened(self, seconds: float) -> None:
        """The loop did not listen for `seconds` (between two polls, or a poll that overslept
        because the process was stopped: SIGSTOP, a suspended VM). Workers were not silent then,
        nobody read them; what they sent may still be on its way in."""
        settings = self.state.settings
        if seconds > settings.heartbeat_interval:
            self.state.scheduler.paused(seconds)
            (log.warning if seconds > settings.expiry / 2 else log.debug)(
                "the coordinator did not listen for %.1f s; workers get that time back", seconds
            )

    def run(self, now: float) -> None:
        """The duties, when due. Expiry, backups and heartbeats look at every worker: ten times
        an interval is often enough for them (a heartbeat leaves at most a tenth of an interval
        late), not after every poll of a busy loop."""
        if now < self.due_at:
            return
        self.due_at = now + self.state.settings.heartbeat_interval / 10
        self._expire(now)
        self._send_heartbeats(now)

    def _expire(self, now: float) -> None:
        """Let the scheduler act on elapsed time (silent workers declared dead, backups)."""
        scheduler, outbox = self.state.scheduler, self.state.outbox
        before = dict(scheduler.workers)
        self.carry_out(scheduler.tick(now))
        for worker in before.keys() - scheduler.workers.keys():
            log.warning(
                "worker %s declared dead: silent for more than %g s",
                worker,
                self.state.settings.expiry,
                extra=about(worker=worker),
            )
            log_lost_attempts(before[worker], "its worker was declared dead")
            outbox.forget(worker)

    def _send_heartbeats(self, now: float) -> None:
        outbox, interval = self.state.outbox, self.state.settings.heartbeat_interval
        for worker in list(self.state.scheduler.workers):
            if now - outbox.last_sent.get(worker, 0.0) >= interval:
                outbox.send_to_worker(worker, protocol.HEARTBEAT, {})
