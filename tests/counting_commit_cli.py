"""`python -m counting_commit_cli ARGS...`: the mapreduce CLI that appends one line per job
commit it carries out (`commit.commit_job`: its process id and the output) to $COMMIT_LOG, so a
test can tell that an output was committed once, and by which coordinator."""

from __future__ import annotations

import os

from mapreduce import commit
from mapreduce.cli import main


def install() -> None:
    real_commit = commit.commit_job

    def counted_commit(staging, output, *args, **kwargs):
        if os.environ.get("COMMIT_LOG"):
            with open(os.environ["COMMIT_LOG"], "a") as handle:
                handle.write(f"{os.getpid()} {output}\n")
        return real_commit(staging, output, *args, **kwargs)

    commit.commit_job = counted_commit


if __name__ == "__main__":
    install()
    main()
