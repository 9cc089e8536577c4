"""The worker side: the process that serves a coordinator, and what runs a task attempt.

- `main`: `run_worker(...)`, the entry that `mapreduce worker` and `python -m mapreduce.worker` call
- `process`: the worker process: socket loop, registration, heartbeats both ways, reconnecting
- `executor`: the child process per task slot that runs user code, one attempt at a time
- `attempt`: `run_task(job, header)`, the one entry for running an attempt (executor and --inline)
- `map_task`, `reduce_task`: the map variants (per record, map-only, vectorised); the reduce variants
- `access`: whether this worker reaches a task's input and output paths
- `pairs`: user code's output as (key, value) pairs, or a RecordError
- `failures`: what a failed attempt reports, with the user's own traceback
- `logs`: fd-level capture of what an attempt prints, and its upload to an object store
- `pool`: the local pool of worker processes that `mapreduce run` starts and replaces
- `lifetime`: no worker or executor outlives the process that started it
"""
