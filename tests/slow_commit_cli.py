"""`python -m slow_commit_cli ARGS...`: the mapreduce CLI whose job commits are slowed down, so a
test can kill the coordinator in the middle of one: a commit writes `commit-started` into
$COMMIT_MARKER_DIR, waits, commits, and waits again before its last step (removing the job's
marker from the output)."""

from __future__ import annotations

import os
import time

from mapreduce import commit
from mapreduce.cli import main

PAUSE_S = 0.3


def install() -> None:
    real_commit, real_remove_marker = commit.commit_job, commit._remove_marker

    def slow_commit(*args, **kwargs):
        directory = os.environ.get("COMMIT_MARKER_DIR")
        if directory:
            with open(os.path.join(directory, "commit-started"), "a") as handle:
                handle.write(f"{time.time()}\n")
        time.sleep(PAUSE_S)
        return real_commit(*args, **kwargs)

    def slow_remove_marker(output_dir):
        time.sleep(PAUSE_S)
        return real_remove_marker(output_dir)

    commit.commit_job = slow_commit
    commit._remove_marker = slow_remove_marker


if __name__ == "__main__":
    install()
    main()
