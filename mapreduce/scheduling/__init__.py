"""The scheduling core's parts, one concern per module (`mapreduce.scheduler` is its public face):

- `instructions`: what the scheduler tells the coordinator to do (Assign, Abandon, PublishTask,
  ReplanTask, CommitJob, FailJob);
- `settings`: `SchedulerSettings` (heartbeats, backups, resends, re-planning);
- `jobstate`: a job's task table and the indexes kept in step with it (`JobState`);
- `engine`: a job's own decisions on its attempts' outcomes, re-planning and phases (`JobEngine`);
- `backups`: which running attempts get a backup, from the medians of what their peers took;
- `scheduler`: workers, their slots and liveness, and assignment across jobs (`Scheduler`).

Events in, instructions out, time injected; nothing here does I/O (tests/test_architecture.py).
"""
