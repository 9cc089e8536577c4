"""Per-task hooks (mrjob's names): `mapper_init()` ... `reducer_final()`, once per task attempt.

An *_init is called before the task's first record, a *_final after its last; a *_final may
return or yield (key, value) pairs, which go where the records' output goes (in-mapper combining,
a reducer's totals). They run in the same process as the records, so module-level values an
*_init sets are what the mapper, combiner or reducer sees.
"""

from __future__ import annotations

from typing import Callable, Iterable

from mapreduce.jobspec import Job
from mapreduce.pairs import not_iterable_output
from mapreduce.streaming import StreamingCommandError
from mapreduce.worker.failures import TaskError, failure_report


def call_hook(hook: Callable | None, name: str, job: Job) -> None:
    """Call an *_init hook (its result is ignored); its exception fails the attempt, named."""
    if hook is None:
        return
    try:
        hook()
    except StreamingCommandError as exc:
        raise TaskError(failure_report(exc, job)) from None
    except Exception as exc:
        raise TaskError(failure_report(exc, job, f"in {name}")) from None


def hook_output(hook: Callable, name: str, job: Job) -> Iterable:
    """What a *_final hook returns or yields, as an iterable of items (checked as pairs by
    whoever takes them); a generator's own exceptions come out as it is read."""
    try:
        output = hook()
    except StreamingCommandError as exc:  # the hook is the framework's: the message says all
        raise TaskError(failure_report(exc, job)) from None
    except Exception as exc:
        raise TaskError(failure_report(exc, job, f"in {name}")) from None
    if output is None:
        return ()
    if not hasattr(output, "__iter__"):
        raise TaskError(failure_report(not_iterable_output(name, output), job))
    return output
