"""`python -m faulty_cli ARGS...`: the mapreduce CLI with a fault injected through the
committer's test hook (fault matrix row 19): the first published output of map task 1 of each job
is deleted, as a failed disk would, so a reducer cannot read it and the map must run again."""

from __future__ import annotations

import logging

from mapreduce import storage
from mapreduce.cli import main
from mapreduce.coordinator.committer import Committer

LOST_MAP_TASK = 1
log = logging.getLogger("mapreduce.coordinator")
_done: set = set()


def lose_map_output(record, task) -> None:
    if task.kind != "map" or task.index != LOST_MAP_TASK or record.id in _done:
        return
    _done.add(record.id)
    for paths in (task.result or {}).get("files", {}).values():
        for path in paths:
            storage.delete_file(path)
    log.warning("fault injection: deleted the output of %s %s", record.id, task.id)


if __name__ == "__main__":
    Committer.before_publish.append(lose_map_output)
    main()
