"""OUTPUT/_logs/skipped: the records --skip-bad-records skipped, one line each.

Each task's accepted attempt reports what it skipped; when its output is published, the list is
written to the staging directory as `_skipped/<task id>` (a task run again overwrites its own),
and at job commit the lists are joined, in task order, into `_logs/skipped`, which is committed
with the output. Lines say where the record is (file and line, or the reduce key) and why it was
skipped (the exception the job's code raised on it twice, or why it did not parse).
"""

from __future__ import annotations

from . import storage
from .commit import LOGS_DIR

TASK_LISTS = "_skipped"  # in staging, until the commit
SKIPPED = "skipped"  # OUTPUT/_logs/skipped


def record_task(staging: str, task_id: str, skipped) -> None:
    """Keep what the task's accepted attempt skipped (nothing: remove an earlier run's list)."""
    location = storage.join(staging, TASK_LISTS, task_id)
    lines = [str(line).replace("\n", " ") for line in skipped or ()]
    if not lines:
        if storage.exists(location):
            storage.delete_file(location)
        return
    storage.make_dirs(storage.join(staging, TASK_LISTS))
    with storage.atomic_write(location, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{task_id}\t{line}\n" for line in lines))


def gather(staging: str, earlier: list | tuple = ()) -> int:
    """Join the tasks' lists into `_logs/skipped` (map tasks first, each in task order), after
    `earlier` lines (a multi-step job's earlier steps'); returns how many records were skipped.
    Nothing skipped: no file."""
    directory = storage.join(staging, TASK_LISTS)
    lists = storage.list_files(directory) if storage.exists(directory) else []
    if not lists and not earlier:
        storage.delete_tree_quietly(directory)  # a task run again may have emptied it
        return 0
    text = "".join(f"{line}\n" for line in earlier)
    for location, _, _ in sorted(lists, key=lambda item: _task_order(item[1])):
        with storage.open_input_stream(location) as stream:
            text += stream.read().decode("utf-8")
    storage.make_dirs(storage.join(staging, LOGS_DIR))
    with storage.atomic_write(
        storage.join(staging, LOGS_DIR, SKIPPED), "w", encoding="utf-8"
    ) as out:
        out.write(text)
    storage.delete_tree_quietly(directory)
    return text.count("\n")


def read(output_dir: str) -> list[str]:
    """The lines of a committed output's `_logs/skipped` ([] when nothing was skipped)."""
    location = storage.join(output_dir, LOGS_DIR, SKIPPED)
    if not storage.exists(location):
        return []
    with storage.open_input_stream(location) as stream:
        return stream.read().decode("utf-8").splitlines()


def _task_order(task_id: str) -> tuple:
    kind, _, rest = task_id.partition("-")
    return (kind != "map", [int(part) for part in rest.split(".") if part.isdigit()])
