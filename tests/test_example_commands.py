"""Every example job's docstring commands run as written, in order, from a fresh copy of the
repository's jobs/ and datasets/ (inputs the examples need are made by datasets/generate.py)."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, part_files

EXAMPLES = sorted((ROOT / "jobs").glob("*.py"))


def docstring_commands(path) -> list[str]:
    """The indented shell commands of a job's docstring: `mapreduce ...`, `python ...`, or
    either after VAR=value assignments."""
    text = ast.get_docstring(ast.parse(path.read_text())) or ""
    commands = []
    for line in text.splitlines():
        if not line.startswith("    "):
            continue
        words = shlex.split(line.strip())
        program = next((w for w in words if "=" not in w.split("/")[0]), "")
        if program in ("mapreduce", "python"):
            commands.append(line.strip())
    return commands


def as_run_here(command: str) -> str:
    """The command with `mapreduce` and `python` as this interpreter (the venv's) runs them,
    the rest (quoting, VAR=value prefixes) as written."""
    exe = shlex.quote(sys.executable)
    command = re.sub(r"^((?:\w+=\S+\s+)*)mapreduce\b", rf"\1{exe} -m mapreduce.cli", command)
    return re.sub(r"^((?:\w+=\S+\s+)*)python\b", rf"\1{exe}", command)


def test_every_example_documents_a_command_and_they_are_run_as_written():
    for path in EXAMPLES:
        assert any(" run jobs/" in c for c in docstring_commands(path)), path.name
    expected = f"A='x(y)?' {shlex.quote(sys.executable)} -m mapreduce.cli run j.py"
    assert as_run_here("A='x(y)?' mapreduce run j.py") == expected


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_docstring_commands_run_as_written_from_a_fresh_copy(tmp_path, example):
    clone = tmp_path / "clone"
    for folder in ("jobs", "datasets"):
        shutil.copytree(ROOT / folder, clone / folder, ignore=shutil.ignore_patterns("__pycache__"))
    commands = docstring_commands(example)
    assert commands
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", as_run_here(command)],
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
    outputs = [
        clone / shlex.split(c)[shlex.split(c).index("--output") + 1]
        for c in commands
        if "--output" in c and " run " in f" {c} "
    ]
    for output in outputs:
        assert (output / "_SUCCESS").exists() and part_files(output), output
    if example.stem.startswith("terasort"):
        lines = [line for p in part_files(outputs[0]) for line in p.read_text().splitlines()]
        records = [
            line
            for p in sorted((clone / "out/data/terasort").iterdir())
            for line in p.read_text().splitlines()
        ]
        assert [line.replace("\t", "", 1) for line in lines] == sorted(records)
