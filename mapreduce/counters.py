"""User counters: `mapreduce.counter("group", "name", n)` from map, combine, reduce code.

Each task attempt starts with empty counters; the executor sends what the attempt counted with its
result, and the coordinator sums the committed attempts only, so a re-executed, duplicated or
backup attempt never counts twice (as Hadoop's counters).
"""

from __future__ import annotations

_counts: dict = {}


def counter(group: str, name: str, amount: int | float = 1) -> None:
    """Add `amount` to the counter `name` in `group`."""
    key = (str(group), str(name))
    _counts[key] = _counts.get(key, 0) + amount


def reset() -> None:
    _counts.clear()


def take() -> dict:
    """This attempt's counters as {group: {name: total}}, and start afresh."""
    nested: dict = {}
    for (group, name), total in _counts.items():
        nested.setdefault(group, {})[name] = total
    _counts.clear()
    return nested


def add_into(totals: dict, counts: dict) -> None:
    """Sum {group: {name: n}} into totals (ignoring anything malformed a peer might send)."""
    if not isinstance(counts, dict):
        return
    for group, names in counts.items():
        if isinstance(names, dict):
            for name, amount in names.items():
                if isinstance(amount, (int, float)) and not isinstance(amount, bool):
                    bucket = totals.setdefault(str(group), {})
                    bucket[str(name)] = bucket.get(str(name), 0) + amount


def job_totals(reports) -> dict:
    """The job's counters from its committed attempts' reports: framework counters summed by
    name, user counters under "user" as {group: {name: total}}."""
    totals: dict = {}
    user: dict = {}
    for report in reports:
        add_report(totals, user, report)
    return with_user(totals, user)


def add_report(totals: dict, user: dict, report: dict) -> None:
    """Add one committed attempt's report into running totals: framework counters by name into
    `totals`, user counters into `user` (job_totals, one report at a time)."""
    for name, value in (report.get("counters") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            totals[name] = totals.get(name, 0) + value
    add_into(user, report.get("user_counters") or {})


def with_user(totals: dict, user: dict) -> dict:
    """The job's counters as job_totals gives them, from the two running totals."""
    return {**totals, "user": user} if user else dict(totals)
