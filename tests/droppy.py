"""Run a `mapreduce` command in a process that loses chosen messages, as a flaky wire would.

    python tests/droppy.py RULE[,RULE...] -- worker --connect ... (any `mapreduce` arguments)

It appends one filter to `mapreduce.protocol.FILTERS` (the wire's test hook, empty in production)
and then calls the normal command-line entry point. Each message lost is said on stderr as
`droppy: lost <command> <job> <task> <attempt>`, so a test can count them. Rules:

- `first-done`: the first DONE sent for each attempt (its repeats go through);
- `every-third-task`: every third TASK received;
- `first-accepted`: the first ACCEPTED reply received (a client's SUBMIT reply).
"""

from __future__ import annotations

import sys
from collections import Counter

from mapreduce import protocol
from mapreduce.cli import main

RULES = {
    "first-done": ("out", protocol.DONE),
    "every-third-task": ("in", protocol.TASK),
    "first-accepted": ("in", protocol.ACCEPTED),
}

NAMES = {protocol.DONE: "DONE", protocol.TASK: "TASK", protocol.ACCEPTED: "ACCEPTED"}


class Dropper:
    def __init__(self, rules: list[str]):
        unknown = set(rules) - set(RULES)
        if unknown:
            raise SystemExit(f"droppy: unknown rules {sorted(unknown)}; known: {sorted(RULES)}")
        self.rules = rules
        self.seen: Counter = Counter()

    def __call__(self, direction: str, message: protocol.Message) -> bool:
        for rule in self.rules:
            if (direction, message.command) != RULES[rule]:
                continue
            key = protocol.attempt_key(message.header)
            if rule == "first-done":
                self.seen[tuple(key.values())] += 1
                lose = self.seen[tuple(key.values())] == 1
            else:
                self.seen[rule] += 1
                lose = rule == "first-accepted" and self.seen[rule] == 1
                lose = lose or (rule == "every-third-task" and self.seen[rule] % 3 == 0)
            if lose:
                print(
                    "droppy: lost",
                    NAMES[message.command],
                    *key.values(),
                    file=sys.stderr,
                    flush=True,
                )
                return False
        return True


if __name__ == "__main__":
    rules, separator, *args = sys.argv[1:]
    assert separator == "--", __doc__
    protocol.FILTERS.append(Dropper(rules.split(",")))
    main(args=args, prog_name="mapreduce")
