"""`python -m mapreduce.worker --connect ADDRESS ...`: what the local pool starts; the same command,
options and exit status as `mapreduce worker`. An entry point, like the CLI it starts: the worker's
library modules never import the CLI."""

from mapreduce.cli import worker_command

if __name__ == "__main__":
    worker_command(prog_name="python -m mapreduce.worker")
