"""Worker processes: `worker` (one process serving a coordinator), `execute` (running one task
attempt) and `pool` (the local pool of worker processes that `mapreduce run` starts and replaces)."""
