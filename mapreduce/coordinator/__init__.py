"""The coordinator, one concern per module:

- `loop`: the ROUTER socket and its poll loop (`Coordinator`): each message to its part;
- `workers`: workers' messages (READY, HEARTBEAT reports, DONE, FAIL, BYE);
- `clients`: clients' requests (SUBMIT, WATCH, CANCEL_JOB, STATUS) and the job API behind them;
- `duties`: the timed duties (expiry, backups, heartbeats);
- `executor`: the scheduler's instructions carried out, and a job's end recorded;
- `outcomes`: the committer's outcomes fed back to the scheduler;
- `outbox`: every send, and the routes, sessions and TASK numbers of registered workers;
- `state`: what those parts share (`CoordinatorState`);
- `recovery`: the journal's replay at start-up, and its compaction;
- `jobs`: job records, what clients are told (state, progress, counters);
- `committer`: publish, commit and clean-up on their own thread, outcomes back as events;
- `submission`: what a client sends to run a job;
- `service`: `mapreduce coordinator`, the long-lived service, and its work directory.
"""

from .jobs import JobRecord, JobStatus, make_work_dir, remove_work_dir, task_header
from .loop import Coordinator
from .service import check_work_dir, serve
from .submission import JobSubmission

__all__ = [
    "Coordinator",
    "JobRecord",
    "JobStatus",
    "JobSubmission",
    "check_work_dir",
    "make_work_dir",
    "remove_work_dir",
    "serve",
    "task_header",
]
