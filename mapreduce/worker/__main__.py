"""`python -m mapreduce.worker --connect ADDRESS ...`: what the local pool starts. The same worker,
options and exit status as `mapreduce worker`, without loading the CLI."""

from __future__ import annotations

import argparse
import sys

from mapreduce import defaults
from mapreduce.exits import reports_errors
from mapreduce.logconfig import configure_logging
from mapreduce.worker.main import run_worker


def _at_least(minimum, kind):
    def convert(text: str):
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is smaller than {minimum}")
        return value
    return convert


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mapreduce.worker",
                                     description="Serve a coordinator: run the map and reduce "
                                                 "tasks it hands out (as `mapreduce worker`).")
    parser.add_argument("--connect", required=True, help="Coordinator address, e.g. tcp://host:5555.")
    parser.add_argument("--processes", type=_at_least(1, int), default=1,
                        help="Tasks this worker runs at once (one executor process each).")
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--heartbeat-interval", type=_at_least(0.01, float),
                        default=defaults.HEARTBEAT_INTERVAL_S,
                        help="Seconds between heartbeats, both directions.")
    parser.add_argument("--liveness", type=_at_least(1, int), default=defaults.HEARTBEAT_LIVENESS,
                        help="Heartbeat intervals of silence before the coordinator counts as gone.")
    parser.add_argument("--keys", dest="keys_dir", default=None,
                        help="Key directory from `mapreduce keys generate`.")
    parser.add_argument("--insecure", action="store_true",
                        help="Allow a non-loopback address without keys (trusted networks only).")
    return parser.parse_args(argv)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    configure_logging()            # to the file of `mapreduce --log-file ... run`, if it set one
    return run_worker(options.connect, options.processes, parent_pid=options.parent_pid,
                      heartbeat_interval=options.heartbeat_interval, liveness=options.liveness,
                      keys_dir=options.keys_dir, insecure=options.insecure)


if __name__ == "__main__":
    sys.exit(main())
