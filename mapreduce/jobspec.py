"""Loading a user's job module and shipping it to workers.

A job is a Python file (`jobs/wordcount.py`) or an importable module name (`jobs.wordcount`) that
defines `mapper`, and optionally `reducer`, `combiner`, `partitioner` and `INPUT_FORMAT`. It travels
to workers with cloudpickle *by value* (the module's functions, helpers and module-level values), so
workers need not have the file, and a setting read from the environment at import time is the one
the submitting side saw.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import cloudpickle

from .defaults import SHUFFLE_COMPRESSION
from .errors import JobLoadError
from .inputs import BATCH_FORMATS, INPUT_FORMATS  # noqa: E402

TASK_HOOKS = (
    "mapper_init",
    "mapper_final",
    "combiner_init",
    "combiner_final",
    "reducer_init",
    "reducer_final",
)
# Every function name a job module may define that the framework calls.
JOB_FUNCTIONS = (
    "mapper",
    "map_batches",
    "reducer",
    "combiner",
    "partitioner",
    "partition_batches",
    "setup",
    *TASK_HOOKS,
)
# Names users coming from elsewhere write for a hook (Hadoop's map/reduce, a plural, a short form).
_SHORT_FORMS = {
    "map": "mapper",
    "reduce": "reducer",
    "combine": "combiner",
    "partition": "partitioner",
}


@dataclass
class Job:
    name: str
    mapper: Callable | None = None
    reducer: Callable | None = None
    combiner: Callable | None = None
    partitioner: Callable | None = None
    input_format: str = "lines"
    # cloudpickle ships code without its file name ("<dynamic-code>"), so the job carries its own
    # path and source to show the user real file names and lines in tracebacks from workers.
    source_path: str | None = None
    source: str | None = None
    map_batches: Callable | None = None  # the vectorised API (see mapreduce.vectorized)
    aggregation: str | None = None  # REDUCE = "count" | "sum" | "min" | "max" | "identity"
    partition_batches: Callable | None = None  # vectorised partitioner: (keys, n) -> int array
    setup: Callable | None = None  # setup(inputs, num_reducers), run before shipping
    # Per-task hooks (mrjob's names): called once per task attempt, before and after its records;
    # a *_final may return or yield pairs, which go where the records' output goes.
    mapper_init: Callable | None = None
    mapper_final: Callable | None = None
    combiner_init: Callable | None = None
    combiner_final: Callable | None = None
    reducer_init: Callable | None = None
    reducer_final: Callable | None = None
    # --file, --archive, --py-files (mapreduce.sidefiles.collect), and, on a worker, the job's
    # working directory that holds them (sidefiles.prepare), where its task attempts run.
    side_files: list = field(default_factory=list)
    workdir: str | None = None
    # The last step of a multi-step job: what the earlier steps skipped (--skip-bad-records),
    # set by steps.run_steps, committed with the output in _logs/skipped.
    skipped_earlier: list = field(default_factory=list)
    sort_values: bool = False  # SORT_VALUES = True: each key's values reach the reducer sorted
    # SHUFFLE_COMPRESSION = "lz4" | "zstd" | None: how its shuffle run files are compressed.
    shuffle_compression: str | None = SHUFFLE_COMPRESSION

    @property
    def map_only(self) -> bool:
        return self.reducer is None and self.aggregation is None


def apply_params(module, ref: str, params: dict) -> None:
    """Set the job's declared parameters: `PARAMS = {"name": default, ...}` in the job module;
    each value is converted to its default's type (int, float, bool, or str when the default is a
    str or None). PARAMS travels with the job's code, so workers see the values set here."""
    declared = getattr(module, "PARAMS", None)
    if not isinstance(declared, dict):
        raise JobLoadError(
            f"job '{ref}' takes no parameters (--param {next(iter(params))}=...): a "
            f"job declares them as PARAMS = {{'name': default, ...}}."
        )
    for name, text in params.items():
        if name not in declared:
            raise JobLoadError(
                f"job '{ref}' has no parameter '{name}'; it declares "
                f"{', '.join(sorted(map(str, declared))) or 'none'}."
            )
        declared[name] = _convert_param(ref, name, text, declared[name])


def check_required_params(module, ref: str) -> None:
    """Refuse to run a job whose PARAMS entries with the default None (required parameters) were
    not given, before anything runs: the job would otherwise fail in every task attempt."""
    declared = getattr(module, "PARAMS", None)
    if not isinstance(declared, dict):
        return
    missing = [str(name) for name, value in declared.items() if value is None]
    if not missing:
        return
    quoted = " and ".join(f"'{name}'" for name in missing)
    options = " ".join(f"--param {name}=VALUE" for name in missing)
    raise JobLoadError(
        f"job '{ref}' needs a value for its parameter{'s' if len(missing) > 1 else ''} "
        f"{quoted}, which {'have' if len(missing) > 1 else 'has'} no default "
        f"(None in its PARAMS): give {'them' if len(missing) > 1 else 'it'} with "
        f"{options} on `mapreduce run` or `submit`."
    )


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _convert_param(ref: str, name: str, text: str, default):
    kind = type(default)
    try:
        if kind is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return text.lower() in _TRUE
        if kind in (int, float):
            return kind(text)
    except ValueError as exc:
        what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise JobLoadError(
            f"job '{ref}': parameter '{name}' takes {what} (its default is "
            f"{default!r}); '{text}' is not ({exc})."
        ) from None
    return text


def check_hook_names(names, ref: str, defined) -> None:
    """Refuse a job whose functions include a near miss of a hook name (`reduce` or `reducers`
    for `reducer`, `mapper_int` for `mapper_init`) while the hook itself is not defined: the
    framework would silently not call it (a `def reduce` job would run map-only and exit 0).
    `names` are the job's function names, `defined(name)` says whether the hook is there."""
    for name in names:
        if name.startswith("_") or name in JOB_FUNCTIONS:
            continue
        hook = close_hook_name(name)
        if hook is not None and not defined(hook):
            raise JobLoadError(
                f"job '{ref}' defines `{name}` but no `{hook}`: did you mean `{hook}`? The "
                f"framework calls only {', '.join(f'`{n}`' for n in JOB_FUNCTIONS)}, so "
                f"`{name}` would never run. Rename it to `{hook}` (or, for a helper, to a "
                f"name that is not so close to a hook's, e.g. starting with an underscore)."
            )


def close_hook_name(name: str) -> str | None:
    """The hook `name` is probably a misspelling of, or None."""
    lowered = name.lower()
    if lowered in JOB_FUNCTIONS:
        return lowered  # Mapper, REDUCER
    head, _, tail = lowered.partition("_")
    candidates = {lowered, lowered.rstrip("s")}
    if head.rstrip("s") in _SHORT_FORMS:
        base = _SHORT_FORMS[head.rstrip("s")]
        candidates |= {base + ("_" + tail if tail else "")}
    for candidate in candidates:
        if candidate in JOB_FUNCTIONS:
            return candidate
    close = difflib.get_close_matches(lowered, JOB_FUNCTIONS, n=1, cutoff=0.85)
    return close[0] if close else None


def _defines(module, hook: str) -> bool:
    """Whether the module defines the hook (map_batches stands for mapper)."""
    names = ("mapper", "map_batches") if hook == "mapper" else (hook,)
    return any(callable(getattr(module, name, None)) for name in names)


def _module_functions(module) -> list[str]:
    """The names of the functions defined in the job module itself (not imported ones)."""
    own = getattr(module, "__name__", None)
    return [
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value) and getattr(value, "__module__", None) == own
    ]


def job_from_module(module, ref: str) -> Job:
    if not isinstance(module, types.SimpleNamespace):  # a step's dict is checked by steps.py
        check_hook_names(_module_functions(module), ref, lambda hook: _defines(module, hook))
    module = _with_streaming_commands(module, ref)
    mapper = getattr(module, "mapper", None)
    map_batches = getattr(module, "map_batches", None)
    if not callable(mapper) and not callable(map_batches):
        raise JobLoadError(
            f"job '{ref}' defines no mapper: a job module must define a function "
            f"`mapper(key, value)` that yields (key, value) pairs (and usually `reducer(key, values)`), "
            f"or the vectorised `map_batches(batch)`."
        )
    if callable(mapper) and callable(map_batches):
        raise JobLoadError(f"job '{ref}' defines both mapper and map_batches; keep one.")
    aggregation = _aggregation(module, ref, callable(map_batches))
    hooks: dict[str, Any] = {}
    for name in ("reducer", "combiner", "partitioner", "partition_batches", "setup", *TASK_HOOKS):
        hook = getattr(module, name, None)
        if hook is not None and not callable(hook):
            raise JobLoadError(f"job '{ref}': `{name}` is defined but is not a function.")
        hooks[name] = hook
    input_format = getattr(module, "INPUT_FORMAT", "lines")
    if input_format not in INPUT_FORMATS:
        raise JobLoadError(
            f"job '{ref}': INPUT_FORMAT is {input_format!r}; use one of "
            f"{', '.join(map(repr, INPUT_FORMATS))}."
        )
    if callable(map_batches) and input_format not in BATCH_FORMATS:
        raise JobLoadError(
            f"job '{ref}': map_batches reads INPUT_FORMAT "
            f"{' or '.join(map(repr, BATCH_FORMATS))}; "
            f"for {input_format!r} input define mapper(key, value)."
        )
    if hooks["combiner"] is not None and hooks["reducer"] is None:
        raise JobLoadError(
            f"job '{ref}' defines a combiner but no reducer; a combiner only makes "
            f"sense before a reduce."
        )
    source_path = getattr(module, "__file__", None)
    try:
        with open(source_path or "", encoding="utf-8") as handle:
            source = handle.read()
    except (OSError, TypeError, UnicodeDecodeError):
        source = None
    if aggregation and (hooks["reducer"] or hooks["combiner"]):
        raise JobLoadError(
            f"job '{ref}' sets REDUCE = {aggregation!r} and also defines a "
            f"reducer or combiner; REDUCE replaces both, so keep one way."
        )
    _check_task_hooks(ref, hooks, callable(map_batches))
    sort_values = _sort_values(module, ref, hooks["reducer"])
    return Job(
        job_name(ref),
        mapper,
        sort_values=sort_values,
        shuffle_compression=_shuffle_compression(module, ref),
        input_format=input_format,
        source_path=source_path,
        source=source,
        map_batches=map_batches,
        aggregation=aggregation,
        **hooks,
    )


def streaming_job(
    mapper_cmd: str, reducer_cmd: str | None = None, combiner_cmd: str | None = None
) -> Job:
    """The job `mapreduce run --mapper-cmd CMD [--reducer-cmd CMD] [--combiner-cmd CMD]` runs."""
    namespace = types.SimpleNamespace(
        MAPPER_CMD=mapper_cmd, REDUCER_CMD=reducer_cmd, COMBINER_CMD=combiner_cmd
    )
    return job_from_module(namespace, "streaming")


def _with_streaming_commands(module, ref: str):
    """The module, or, when it sets MAPPER_CMD, COMBINER_CMD or REDUCER_CMD (Hadoop Streaming
    commands, see mapreduce.streaming), a namespace with its values plus the functions and hooks
    that run those commands."""
    from .streaming import MODULE_SETTINGS, job_functions

    commands = {role: getattr(module, name, None) for role, name in MODULE_SETTINGS.items()}
    if not any(command is not None for command in commands.values()):
        return module
    for role, command in commands.items():
        name = MODULE_SETTINGS[role]
        if command is None:
            continue
        if not isinstance(command, str) or not command.strip():
            raise JobLoadError(
                f"job '{ref}': {name} must be a shell command (a non-empty str), not {command!r}."
            )
        clashes = [h for h in (role, f"{role}_init", f"{role}_final") if getattr(module, h, None)]
        if clashes or (role == "mapper" and getattr(module, "map_batches", None)):
            raise JobLoadError(
                f"job '{ref}' sets {name} and also defines "
                f"{', '.join(clashes) or 'map_batches'}; the command is the {role}, so keep "
                f"one way."
            )
    if commands["mapper"] is None and not callable(getattr(module, "mapper", None)):
        raise JobLoadError(
            f"job '{ref}' sets {' and '.join(MODULE_SETTINGS[r] for r, c in commands.items() if c)}"
            f" but has no mapper: set MAPPER_CMD too (`cat` passes lines on as keys), or "
            f"define mapper(key, value)."
        )
    if getattr(module, "INPUT_FORMAT", "lines") != "lines" and commands["mapper"]:
        raise JobLoadError(
            f"job '{ref}': MAPPER_CMD reads text lines, so INPUT_FORMAT must be 'lines'."
        )
    values = {name: value for name, value in vars(module).items() if not name.startswith("__")}
    values["__file__"] = getattr(module, "__file__", None)
    return types.SimpleNamespace(**values, **job_functions(commands))


def _check_task_hooks(ref: str, hooks: dict, vectorised: bool) -> None:
    """A hook goes with the function it surrounds: mapper_* with a per-record mapper, combiner_*
    with a combiner, reducer_* with a reducer."""
    needs = {"mapper": "mapper", "combiner": "combiner", "reducer": "reducer"}
    for name in TASK_HOOKS:
        if hooks[name] is None:
            continue
        owner = needs[name.split("_")[0]]
        if owner == "mapper" and vectorised:
            raise JobLoadError(
                f"job '{ref}' defines {name} and map_batches; the per-task hooks go with "
                f"a per-record mapper(key, value). A map_batches job keeps its state in "
                f"module-level values."
            )
        if owner != "mapper" and hooks[owner] is None:
            raise JobLoadError(
                f"job '{ref}' defines {name} but no {owner}; {name} runs around the "
                f"{owner}'s records, so define {owner} too (or remove {name})."
            )


SHUFFLE_CODECS = ("lz4", "zstd")


def _shuffle_compression(module, ref: str) -> str | None:
    """SHUFFLE_COMPRESSION: the codec of the job's shuffle run files ("lz4", "zstd"), or None."""
    codec = getattr(module, "SHUFFLE_COMPRESSION", SHUFFLE_COMPRESSION)
    if codec is not None and codec not in SHUFFLE_CODECS:
        raise JobLoadError(
            f'job \'{ref}\': SHUFFLE_COMPRESSION is {codec!r}; set it to "lz4", "zstd" or None.'
        )
    return codec


def _sort_values(module, ref: str, reducer: Callable | None) -> bool:
    """SORT_VALUES = True (mrjob's SORT_VALUES, Hadoop's secondary sort): the shuffle sorts each
    key's values, so the reducer receives them in order."""
    sort_values = getattr(module, "SORT_VALUES", False)
    if not isinstance(sort_values, bool):
        raise JobLoadError(f"job '{ref}': SORT_VALUES is {sort_values!r}; set it to True or False.")
    if sort_values and reducer is None:
        raise JobLoadError(
            f"job '{ref}' sets SORT_VALUES = True but defines no reducer(key, values); "
            f"SORT_VALUES sorts the values each reducer call receives, so define a reducer "
            f"or remove SORT_VALUES."
        )
    return sort_values


def _aggregation(module, ref: str, vectorised: bool) -> str | None:
    from .vectorized import AGGREGATIONS

    aggregation = getattr(module, "REDUCE", None)
    if aggregation is None:
        return None
    if aggregation not in AGGREGATIONS:
        raise JobLoadError(
            f"job '{ref}': REDUCE is {aggregation!r}; use one of "
            f"{', '.join(map(repr, AGGREGATIONS))}."
        )
    if not vectorised:
        raise JobLoadError(
            f"job '{ref}': REDUCE goes with map_batches (the vectorised API); a "
            f"per-record job defines reducer(key, values) instead."
        )
    return aggregation


_WITH_SIDE_FILES = "mapreduce job with side files"


def dumps_job(job: Job) -> bytes:
    """The job's code as it travels. A job with side files is pickled in two layers: the side
    files' list (plain data) around the job, so a worker can fetch them, --py-files first, before
    it unpickles code that imports those modules."""
    if not job.side_files:
        return cloudpickle.dumps(job)
    return cloudpickle.dumps((_WITH_SIDE_FILES, list(job.side_files), cloudpickle.dumps(job)))


def loads_job(blob: bytes) -> Job:
    """A job from dumps_job's bytes; its side files are fetched (once per job, into the worker's
    cache) and job.workdir names the directory its task attempts run in."""
    loaded = cloudpickle.loads(blob)
    if not (isinstance(loaded, tuple) and loaded and loaded[0] == _WITH_SIDE_FILES):
        return loaded
    from . import sidefiles

    _, side_files, inner = loaded
    workdir = sidefiles.prepare(side_files)
    for path in reversed(sidefiles.import_paths(side_files, workdir)):
        if path not in sys.path:
            sys.path.insert(0, path)
    job = cloudpickle.loads(inner)
    job.workdir = workdir
    return job


def job_name(ref: str) -> str:
    """A job's name from its reference: a file's base name without .py, or the module name."""
    base = os.path.basename(ref.rstrip("/"))
    return base[:-3] if base.endswith(".py") else ref


def _looks_like_path(ref: str) -> bool:
    return ref.endswith(".py") or os.sep in ref or os.path.exists(ref)


def import_job_module(ref: str):
    if _looks_like_path(ref):
        return _import_from_path(ref)
    # As `python -m` does: a module name is looked up from the current directory first.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(ref)
    except ModuleNotFoundError as exc:
        if exc.name and ref.startswith(exc.name):
            raise JobLoadError(
                f"job '{ref}' not found: no such file, and no importable module of "
                f"that name. Give the path of the job's .py file, or a module name "
                f"importable from the current directory."
            ) from None
        raise _import_failure(ref, exc) from None
    except Exception as exc:
        raise _import_failure(ref, exc) from None
    _ship_by_value(module)
    return module


def _import_from_path(path: str):
    if not os.path.isfile(path):
        what = "is a directory, not a .py file" if os.path.isdir(path) else "does not exist"
        raise JobLoadError(
            f"job file '{path}' {what}. Give the path of a Python file that "
            f"defines mapper(key, value)."
        )
    # A unique module name, so two jobs with the same file name never share a module.
    name = "mapreduce_job_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_").replace(
        ".", "_"
    )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise JobLoadError(f"job file '{path}' cannot be loaded as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        line = (exc.text or "").rstrip("\n")
        raise JobLoadError(
            f"job file '{path}' has a syntax error at line {exc.lineno}: {exc.msg}."
            + (f"\n\n    {line.strip()}" if line.strip() else "")
        ) from None
    except Exception as exc:
        del sys.modules[name]
        raise _import_failure(path, exc) from None
    _ship_by_value(module)
    return module


def _ship_by_value(module) -> None:
    # Pickle the job's own functions and globals by value, not as "import this module", so workers
    # elsewhere do not need the job file and see the module-level values of the submitting side.
    try:
        cloudpickle.register_pickle_by_value(module)
    except ValueError:
        pass  # already registered


def _import_failure(ref: str, exc: BaseException) -> JobLoadError:
    user_tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    if isinstance(exc, ModuleNotFoundError):
        return JobLoadError(
            f"job '{ref}' failed to import: it needs the module '{exc.name}', which "
            f"is not installed here. Install it (pip install ...) and try again."
            f"\n\n{user_tb.rstrip()}"
        )
    return JobLoadError(
        f"job '{ref}' raised {type(exc).__name__} while being imported: {exc}\n\n{user_tb.rstrip()}"
    )
