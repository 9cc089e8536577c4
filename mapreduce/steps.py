"""Multi-step jobs: a job module may define `STEPS`, an ordered list of steps, each a dict with
`mapper` (or `map_batches`), and optionally `combiner`, `reducer`, `partitioner`, `REDUCE`:

    STEPS = [
        {"mapper": words, "combiner": total, "reducer": total},
        {"mapper": to_one_key, "reducer": top_ten},
    ]

Every step is an ordinary job. The first reads the inputs with the module's INPUT_FORMAT; each
later step reads the previous step's (key, value) pairs, which flow between steps as Arrow files in
a hidden directory beside the output (reachable by every worker, like the output), removed at the
end. Only the last step writes the job's output, so a failure in any step commits nothing.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import types
from typing import Callable

from . import leftovers, skiplog, storage
from .commit import check_job_paths, check_output_dir
from .errors import JobLoadError
from .jobspec import (
    TASK_HOOKS,
    Job,
    apply_params,
    check_required_params,
    close_hook_name,
    import_job_module,
    job_from_module,
    job_name,
)

PAIRS = "pairs"  # the input format of every step after the first
ARROW = "arrow"  # the output format of every step but the last
STEP_HOOKS = (
    "mapper",
    "map_batches",
    "combiner",
    "reducer",
    "partitioner",
    "partition_batches",
    "REDUCE",
    *TASK_HOOKS,
)


_SCRATCH = re.compile(r"^(?P<parent>.*?)\.(?P<name>[^/]+)\.steps-[0-9a-f]+/step-(?P<step>\d+)$")


def shown_output(path: str) -> str:
    """A job's output as `status` and the status page show it: an earlier step's output lives in
    a hidden scratch directory beside the final output (removed at the end), shown as such."""
    match = _SCRATCH.match(path)
    if match is None:
        return path
    final = match.group("parent") + match.group("name")
    return (
        f"{final} (step {match.group('step')}: intermediate output beside it, removed at the end)"
    )


def load_steps(ref: str, params: dict | None = None) -> list[Job]:
    """The job's steps as Jobs: one for an ordinary job module, one per entry of STEPS."""
    module = import_job_module(ref)
    if params:
        apply_params(module, ref, params)
    check_required_params(module, ref)
    return steps_of_module(module, ref)


def steps_of_module(module, ref: str) -> list[Job]:
    """The steps of an imported job module (see load_steps)."""
    steps = getattr(module, "STEPS", None)
    if steps is None:
        return [job_from_module(module, ref)]
    if not isinstance(steps, (list, tuple)) or not steps:
        raise JobLoadError(
            f"job '{ref}': STEPS must be a non-empty list of dicts with a mapper "
            f"(and usually a reducer)."
        )
    jobs = []
    for number, step in enumerate(steps, 1):
        unknown = sorted(map(str, set(step) - set(STEP_HOOKS))) if isinstance(step, dict) else []
        close = [(name, close_hook_name(name)) for name in unknown]
        for name, hook in close:
            if hook is not None and hook in STEP_HOOKS and hook not in step:
                raise JobLoadError(
                    f"job '{ref}': step {number} of STEPS has `{name}` but no `{hook}`: did "
                    f"you mean `{hook}`? A step may have {', '.join(STEP_HOOKS)}."
                )
        if not isinstance(step, dict) or unknown:
            raise JobLoadError(
                f"job '{ref}': step {number} of STEPS must be a dict of {', '.join(STEP_HOOKS)}."
            )
        namespace = types.SimpleNamespace(
            **step,
            __file__=getattr(module, "__file__", None),
            INPUT_FORMAT=getattr(module, "INPUT_FORMAT", "lines") if number == 1 else PAIRS,
        )
        job = job_from_module(namespace, f"{ref} step {number}")
        # Named as the single-step job of the same module is, with the step: "wordcount step 1/2".
        job.name = f"{job_name(ref)} step {number}/{len(steps)}"
        jobs.append(job)
    return jobs


def run_steps(
    steps: list[Job],
    inputs: list[str],
    output_dir: str,
    run_one: Callable,
    *,
    overwrite: bool,
    output_format: str,
    work_dir: str | None = None,
):
    """Run the steps in order with `run_one(job, inputs, output_dir, output_format, overwrite)`;
    returns the last step's result."""
    if len(steps) == 1:
        return run_one(steps[0], inputs, output_dir, output_format, overwrite)
    check_job_paths(inputs, output_dir, work_dir)  # refuse before the first step runs
    check_output_dir(output_dir, overwrite)
    scratch = storage.sibling(
        storage.absolute(output_dir.rstrip("/")),
        f".{storage.split(output_dir)[1]}.steps-{secrets.token_hex(3)}",
    )
    if not storage.is_uri(scratch):
        # Those of runs killed before they could remove theirs go first (see leftovers).
        leftovers.remove_abandoned(glob.escape(scratch[: scratch.rindex(".steps-")]) + ".steps-*")
        os.makedirs(scratch)
        leftovers.mark_owned(scratch)
    try:
        current = list(inputs)
        skipped: list = []  # what earlier steps skipped, for the output's _logs/skipped
        for number, job in enumerate(steps, 1):
            last = number == len(steps)
            target = output_dir if last else storage.join(scratch, f"step-{number}")
            if last:
                job.skipped_earlier = skipped
            result = run_one(
                job, current, target, output_format if last else ARROW, overwrite if last else False
            )
            if not last:
                skipped += [f"step {number}\t{line}" for line in skiplog.read(target)]
            current = [target]
        return result
    finally:
        storage.delete_tree_quietly(scratch)
