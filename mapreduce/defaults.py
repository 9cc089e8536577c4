"""Every tunable default, named once with its unit.

Those a user can change are the defaults of command-line options and of the keyword arguments
behind them (run_job, submit_job, SchedulerSettings, MapOutputWriter), and the CLI, the library
API and the tests override them the same way: by passing a value, never by changing this module.
Each such option is also a setting of the configuration file and a MAPREDUCE_<SETTING> variable
(mapreduce/config.py), which the CLI passes on the same way. The settings are: SPLIT_SIZE_BYTES
and MIN_SPLIT_SIZE_BYTES (--split-size, --min-split-size), MAX_ATTEMPTS, MAX_LOST_ATTEMPTS,
MAX_SKIPPED_RECORDS, HEARTBEAT_INTERVAL_S, HEARTBEAT_LIVENESS, REQUEST_TIMEOUT_S (--timeout),
BACKUP_MIN_RUNTIME_S (--backup-after), BACKUP_SLOWDOWN_FACTOR, SORT_BUFFER_BYTES (--sort-buffer),
SPILL_RECORDS, FINISHED_JOBS_KEPT, SUBMIT_WAIT_FOR_WORKERS_S (--wait-for-workers) and
ELECTION_TTL_S (--lease-ttl).
The others (block and batch sizes, back-off, the executors' GC, journal compaction) are fixed
tuning.
"""

KiB = 1024
MiB = 1024 * KiB

SPLIT_SIZE_BYTES = 64 * MiB  # a large text file is cut into splits of about this size
MIN_SPLIT_SIZE_BYTES = 64 * KiB  # a smaller --split-size is refused (--min-split-size lowers it)
MIN_AUTO_SPLIT_BYTES = 1 * MiB  # never cut below this when spreading small input over workers
MAX_ATTEMPTS = 4  # user-error attempts per task (Hadoop: mapreduce.map.maxattempts)
MAX_SKIPPED_RECORDS = 100  # --skip-bad-records: a job that would skip more records fails
SKIP_AFTER_FAILURES = 2  # ...a record is skipped once this many attempts failed on it
MAX_LOST_ATTEMPTS = 10  # attempts lost to a dying worker before the task fails the job
# A lost attempt re-plans a map task into smaller ones (one per file or segment, then halves of a
# line range of at least MIN_SPLIT_SIZE_BYTES) once it has lost this many: the limit above then
# applies to the pieces that cannot be cut any further.
REPLAN_AFTER_LOST_ATTEMPTS = (
    1  # a map task whose process died this often is cut smaller (lost connections do not count)
)

# `submit` to a coordinator without workers waits up to this long for some to register (workers
# started with it are still starting), so its splits are planned for the workers that come.
SUBMIT_WAIT_FOR_WORKERS_S = 3.0
COORDINATOR_BIND = "tcp://127.0.0.1:5555"  # `mapreduce coordinator` listens here (loopback)
WORKER_PROCESSES = 1  # task slots of a `mapreduce worker` (one executor process each)
REQUEST_TIMEOUT_S = 5.0  # `submit` and `status` wait this long for the coordinator to answer

HEARTBEAT_INTERVAL_S = 1.0  # both directions; any message counts as a heartbeat
HEARTBEAT_LIVENESS = 3  # intervals of silence before a peer is declared dead
TASK_RESENDS = 3  # a TASK lost on the way to its worker this often: the attempt runs elsewhere
RECONNECT_BACKOFF_MIN_S = 1.0  # a worker that lost its coordinator retries after this...
RECONNECT_BACKOFF_MAX_S = 32.0  # ...doubling up to this

BACKUP_MIN_RUNTIME_S = 5.0  # an attempt younger than this never gets a backup
BACKUP_SLOWDOWN_FACTOR = 3.0  # ...nor one that has run less than this times the median task
# ...scaled, for a reduce, by its input bytes over its finished peers' median (each counted as at
# least this much): a reduce with a giant key is slow because of its input, not its machine.
BACKUP_INPUT_FLOOR_BYTES = 1 * MiB

# The skew report (mapreduce/skew.py): a partition with this many times the median of the others'
# records, or a key with at least this share of all records (and of a fair partition's), is
# reported, in jobs that shuffle at least SKEW_MIN_RECORDS records.
SKEW_PARTITION_RATIO = 4.0
HEAVY_KEY_SHARE = 0.05
SKEW_MIN_RECORDS = 10_000

MAX_MESSAGE_BYTES = 256 * MiB  # a larger frame from a peer is refused by ZeroMQ itself
REFUSAL_LOG_INTERVAL_S = (
    60.0  # a refused handshake is logged at most this often per host and reason
)
SPILL_RECORDS = 1_000_000  # map output records (or combined keys) buffered before a sorted spill
SORT_BUFFER_BYTES = 64 * MiB  # map output held in memory (estimated) before a sorted spill
COMBINE_EVERY_RECORDS = (
    1_000_000  # buffered records between combiner passes (fewer passes, fewer calls)
)
READ_BLOCK_BYTES = 4 * MiB  # input is read in blocks cut at line boundaries
BINARY_CHECK_BYTES = 8 * KiB  # a text input with a NUL byte in this first block looks binary
ARROW_BATCH_ROWS = 64 * 1024  # rows per Arrow record batch in shuffle files
# How shuffle run files compress their Arrow buffers: "lz4", "zstd" or None. A job may choose
# with SHUFFLE_COMPRESSION = ...; the default was chosen by measurement (README, "Performance").
SHUFFLE_COMPRESSION: str | None = "lz4"
EXECUTOR_GC_THRESHOLDS = (
    50_000,
    20,
    100,
)  # gc.set_threshold in task processes (default 700, 10, 10)
# A worker's side-file cache (mapreduce/sidefiles.py) forgets entries unused this long, and those
# unused for the minimum while it holds more than the size (Hadoop's local.cache.size: 10 GB).
SIDE_FILE_CACHE_IDLE_S = 7 * 24 * 3600.0
SIDE_FILE_CACHE_BYTES = 10 * 1024 * MiB
SIDE_FILE_CACHE_MIN_IDLE_S = 600.0
FINISHED_JOBS_KEPT = 100  # finished jobs a coordinator remembers for `status`
JOURNAL_COMPACT_RECORDS = 200_000  # a coordinator's journal is compacted after this many appends
JOURNAL_COMPACT_OBJECTS = 500  # ...or, on an object store, after this many batch objects
ELECTION_TTL_S = 3  # a leading coordinator's etcd lease; a standby takes over this long after

# The status page and /metrics (mapreduce/coordinator/snapshot.py, mapreduce/web): the loop
# rebuilds what they serve at most this often (seconds), and only when something changed; never
# spending more than STATUS_BUILD_SHARE of its time on it (a huge job is refreshed less often).
STATUS_REFRESH_S = 0.5
STATUS_BUILD_SHARE = 0.1
STATUS_DETAIL_WANTED_S = 30.0  # a job's task table is kept fresh this long after a page asked
STATUS_LOG_TAIL_CHARS = 2000  # of a failed attempt's log, shown on its job's page
