"""What the coordinator's parts share: the scheduler, the job records, the journal, the
committer, the status monitor, the outbox, and the count of changes.

The socket loop (loop.py) builds one `CoordinatorState` and hands it to each part: the handling
of workers' messages (workers.py), of clients' (clients.py), of the committer's outcomes
(outcomes.py), the carrying out of the scheduler's instructions (executor.py), the timed duties
(duties.py) and the journal's replay (recovery.py). It holds no socket and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..scheduler import Scheduler, SchedulerSettings
from . import snapshot
from .committer import Committer
from .jobs import JobRecord
from .journal import Journal
from .outbox import Outbox


@dataclass
class CoordinatorState:
    settings: SchedulerSettings
    scheduler: Scheduler
    committer: Committer
    outbox: Outbox
    journal: Journal | None
    work_dir: str
    finished_jobs_kept: int
    allowed_paths: list = field(default_factory=list)  # --allow-path: where jobs may read, write
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    monitor: snapshot.Publisher | None = None  # when a status page is served (web/)
    started: dict = field(default_factory=dict)  # (job, task, attempt) -> when it was assigned
    changes: int = 0  # messages, outcomes and instructions so far: has anything changed?

    def journal_record(self, record: dict) -> None:
        """Append a record to the journal (when there is one)."""
        if self.journal is not None:
            self.journal.append(record)
            if self.monitor is not None:
                self.monitor.journal_written()

    def sync_journal(self) -> None:
        """The records so far are on disk (when there is a journal)."""
        if self.journal is not None:
            self.journal.sync()
