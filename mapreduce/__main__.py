"""`python -m mapreduce ...`: the same as the `mapreduce` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="mapreduce")
