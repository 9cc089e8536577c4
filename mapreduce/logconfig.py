"""Where the framework's own log records go: stderr, or the file given by `--log-file`.

The file's path travels to the worker processes that `mapreduce run` starts in MAPREDUCE_LOG_FILE,
so theirs land in the same file. Both the CLI and the worker's entry point configure logging here,
so a worker process never needs the CLI module.
"""

from __future__ import annotations

import logging
import os

LOG_FILE_ENV = "MAPREDUCE_LOG_FILE"
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def configure_logging(verbose: int = 0, log_file: str | None = None) -> None:
    """Framework logs to stderr, or to --log-file (inherited by `run`'s worker processes)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    log_file = log_file or os.environ.get(LOG_FILE_ENV)
    if log_file:
        os.environ[LOG_FILE_ENV] = os.path.abspath(log_file)
        logging.basicConfig(level=level, format=LOG_FORMAT, filename=os.environ[LOG_FILE_ENV])
    else:
        logging.basicConfig(level=level, format=LOG_FORMAT)
