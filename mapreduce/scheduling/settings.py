"""The scheduler's settings: heartbeats, backups, resends and re-planning, in one dataclass.

Their defaults are named in `defaults` (with units); the CLI and tests override them by passing
their own `SchedulerSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import defaults


@dataclass
class SchedulerSettings:
    heartbeat_interval: float = defaults.HEARTBEAT_INTERVAL_S
    liveness: int = defaults.HEARTBEAT_LIVENESS
    backup_min_runtime: float = defaults.BACKUP_MIN_RUNTIME_S
    backup_slowdown: float = defaults.BACKUP_SLOWDOWN_FACTOR
    # A reduce's input counts as at least this many bytes when its expected runtime is scaled by
    # its input (start-up dominates a small task).
    backup_input_floor: int = defaults.BACKUP_INPUT_FLOOR_BYTES
    task_resends: int = defaults.TASK_RESENDS
    # A map task that can be cut into smaller tasks is, once this many attempts died with their
    # process (a lost connection does not count).
    replan_after_losses: int = defaults.REPLAN_AFTER_LOST_ATTEMPTS

    @property
    def expiry(self) -> float:
        return self.heartbeat_interval * self.liveness
