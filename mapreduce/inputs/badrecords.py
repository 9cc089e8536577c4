"""Records that do not parse (a malformed JSON line or CSV row): they fail the task, naming their
file and line, or, with --skip-bad-records, are counted and skipped.
"""

from __future__ import annotations


class BadRecord(Exception):
    """A record that does not parse (malformed JSON line or CSV row), with where it is."""

    def __init__(self, path: str, line: int | None, cause: str):
        self.path, self.line, self.cause = path, line, cause
        where = f"{path}, line {line}" if line else path
        super().__init__(f"malformed record in {where}: {cause}")


def skip_or_raise(bad_records: list | None, path: str, cause: str, line_number) -> None:
    """A malformed record: raise BadRecord naming its line (`line_number()`, asked only here:
    finding it may read the file again up to the record, once, as the task fails), or, with
    --skip-bad-records, count it and go on, never looking for its line (which, per skipped
    record, would read the input again and again)."""
    if bad_records is None:
        raise BadRecord(path, line_number(), cause)
    bad_records.append(BadRecord(path, None, cause))
