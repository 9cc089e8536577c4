"""mapreduce: MapReduce jobs as plain Python modules, run on worker processes over ZeroMQ.

Library API (the CLI is a thin shell over it):
    from mapreduce import run_job
    run_job("jobs/wordcount.py", ["datasets/sample"], "out/wordcount", workers=2)
"""

from .counters import counter
from .errors import (
    InputError,
    JobCancelledError,
    JobLoadError,
    MapReduceError,
    OutputError,
    TaskFailedError,
)

__version__ = "0.1.0"
__all__ = [
    "run_job",
    "counter",
    "MapReduceError",
    "InputError",
    "JobLoadError",
    "OutputError",
    "TaskFailedError",
    "JobCancelledError",
]


def run_job(*args, **kwargs):
    """Run a job on this machine; see mapreduce.local.run_job."""
    from .local import run_job as _run_job

    return _run_job(*args, **kwargs)
