"""Where the framework's own log records go: stderr, or the file given by `--log-file`; as text
lines, or with `--log-format json` one JSON object per line (logformat.py).

The file's path and the format travel to the worker processes that `mapreduce run` starts in
MAPREDUCE_LOG_FILE and MAPREDUCE_LOG_FORMAT, so theirs land in the same file, the same way. Both
the CLI and the worker's entry point configure logging here, so a worker process never needs the
CLI module.
"""

from __future__ import annotations

import logging
import os

from .logformat import JsonFormatter

LOG_FILE_ENV = "MAPREDUCE_LOG_FILE"
LOG_FORMAT_ENV = "MAPREDUCE_LOG_FORMAT"
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def configure_logging(
    verbose: int = 0, log_file: str | None = None, log_format: str | None = None
) -> None:
    """Framework logs to stderr, or to --log-file (inherited by `run`'s worker processes)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    log_file = log_file or os.environ.get(LOG_FILE_ENV)
    # None: a worker process of `run`, which logs as its parent does.
    log_format = log_format or os.environ.get(LOG_FORMAT_ENV) or "text"
    if log_format == "json":
        os.environ[LOG_FORMAT_ENV] = log_format
    else:
        os.environ.pop(LOG_FORMAT_ENV, None)
    if log_file:
        os.environ[LOG_FILE_ENV] = os.path.abspath(log_file)
        logging.basicConfig(level=level, format=LOG_FORMAT, filename=os.environ[LOG_FILE_ENV])
    else:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
