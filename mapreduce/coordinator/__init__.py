"""The coordinator, one concern per module:

- `loop`: the ROUTER socket, heartbeats and routing around the I/O-free scheduler (`Coordinator`);
- `jobs`: job records, what clients are told (state, progress, counters), their requests;
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
