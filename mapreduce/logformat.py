"""`--log-format json`: one JSON object per log line, for log shippers (Loki, Elasticsearch).

Each object has time (UTC, ISO 8601), level, logger, job, task, attempt, worker and message
(with the traceback, if any). The coordinator names the task a line is about through `about()`,
passed as `extra=`; a line about no task has null there.
"""

from __future__ import annotations

import datetime
import json
import logging

FIELDS = ("job", "task", "attempt", "worker")


def about(job=None, task=None, attempt=None, worker=None) -> dict:
    """The `extra=` of a log call about a job's task attempt on a worker."""
    return {"job": job, "task": task, "attempt": attempt, "worker": worker}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            message += "\n" + self.formatStack(record.stack_info)
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            **{name: getattr(record, name, None) for name in FIELDS},
            "message": message,
        }
        return json.dumps(entry, default=str)
