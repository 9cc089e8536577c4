"""The worker side: what runs a task attempt.

- `attempt`: `run_task(job, header)`, the one entry for running an attempt (executor and --inline)
- `map_task`, `reduce_task`: the map variants (per record, map-only, vectorised); the reduce variants
- `access`: whether this worker reaches a task's input and output paths
- `pairs`: user code's output as (key, value) pairs, or a RecordError
- `failures`: what a failed attempt reports, with the user's own traceback
- `logs`: fd-level capture of what an attempt prints, and its upload to an object store
"""
