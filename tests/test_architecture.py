"""Who may import whom (ARCHITECTURE.md): read from the source with `ast`, so a wrong import
fails here, not in a review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGE = ROOT / "mapreduce"

# Modules that decide without I/O: they import only each other, the defaults and the standard
# library's pure parts.
PURE = {
    "mapreduce.scheduler",
    "mapreduce.scheduling",
    "mapreduce.scheduling.instructions",
    "mapreduce.scheduling.settings",
    "mapreduce.scheduling.jobstate",
    "mapreduce.scheduling.engine",
    "mapreduce.scheduling.backups",
    "mapreduce.scheduling.scheduler",
    "mapreduce.tasks",
    "mapreduce.defaults",
    "mapreduce.errors",
    "mapreduce.skew",
}
PURE_STDLIB = {
    "__future__",
    "dataclasses",
    "enum",
    "statistics",
    "typing",
    "collections",
    "itertools",
    "math",
    "heapq",
    "functools",
}

# (importer prefix, imported prefixes it must never reach)
FORBIDDEN = [
    (
        "mapreduce.shuffle",
        [
            "mapreduce.coordinator",
            "mapreduce.scheduler",
            "mapreduce.scheduling",
            "mapreduce.worker",
            "mapreduce.cli",
            "mapreduce.local",
            "mapreduce.client",
        ],
    ),
    (
        "mapreduce.inputs",
        [
            "mapreduce.coordinator",
            "mapreduce.scheduler",
            "mapreduce.scheduling",
            "mapreduce.worker",
            "mapreduce.cli",
            "mapreduce.local",
            "mapreduce.client",
        ],
    ),
    (
        "mapreduce.worker",
        [
            "mapreduce.cli",
            "mapreduce.local",
            "mapreduce.client",
            "mapreduce.coordinator",
            "mapreduce.scheduler",
            "mapreduce.scheduling",
        ],
    ),
    ("mapreduce.protocol", ["mapreduce.coordinator", "mapreduce.worker", "mapreduce.client"]),
    ("mapreduce.storage", ["mapreduce.commit", "mapreduce.coordinator", "mapreduce.worker"]),
    # The runners are peers: `submit` (client) and `run` (local) share `prepare`, not each other.
    ("mapreduce.client", ["mapreduce.local", "mapreduce.inline"]),
    ("mapreduce.local", ["mapreduce.client"]),
    # The loop publishes snapshots; the web server (its own thread) reads only those.
    ("mapreduce.coordinator", ["mapreduce.web"]),
    ("mapreduce", ["workers"]),  # the top-level workers/ folder is deployment files only
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path):
    """(imported module, names imported from it, line) for every import in the file, relative
    imports resolved against the file's package."""
    tree = ast.parse(path.read_text(), str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            if node.module is None or node.level and not node.module:
                # `from . import x`: each name is a module of the package
                for name in names:
                    yield f"{target}.{name}", [], node.lineno
            else:
                yield target, names, node.lineno


SOURCES = sorted(PACKAGE.rglob("*.py"))


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_follow_the_architecture(path):
    importer = module_name(path)
    entry_point = importer.endswith(".__main__")  # `python -m ...` starts the CLI
    for target, _names, line in imports_of(path):
        for prefix, forbidden in [] if entry_point else FORBIDDEN:
            if within(importer, prefix):
                for bad in forbidden:
                    assert not within(target, bad), f"{importer}:{line} imports {target}"
        if importer in PURE:
            top = target.split(".")[0]
            assert target in PURE or top in PURE_STDLIB, (
                f"{importer}:{line} imports {target}: the scheduling core does no I/O"
            )


@pytest.mark.parametrize(
    "path",
    [*SOURCES, *sorted((ROOT / "tests").glob("*.py"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_module_imports_another_modules_private_names(path):
    importer = module_name(path)
    for target, names, line in imports_of(path):
        if within(target, "mapreduce") and target != importer:
            private = [
                n
                for n in names
                if n.startswith("_") and not n.startswith("__") and n != "_speedups"
            ]
            assert not private, f"{importer}:{line} imports {private} from {target}"
