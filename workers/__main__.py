"""`python -m workers --connect ADDRESS`: what the local pool starts (the same as `mapreduce worker`)."""

from mapreduce.cli import worker_command

if __name__ == "__main__":
    worker_command(prog_name="python -m workers")
