"""How a command ends on an error: a MapReduceError as one paragraph and its exit status, Ctrl-C
as status 130, never a framework traceback. The `mapreduce` CLI and `python -m mapreduce.worker`
both end this way."""

from __future__ import annotations

import functools
import sys

import click

from .errors import MapReduceError


def reports_errors(command):
    """Turn MapReduceError into `mapreduce: error: <paragraph>` and its exit status."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MapReduceError as exc:
            click.echo(f"mapreduce: error: {exc.paragraph()}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("mapreduce: interrupted", err=True)
            sys.exit(130)

    return wrapper
