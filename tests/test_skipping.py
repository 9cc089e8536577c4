"""--skip-bad-records for records that crash the job's code (MapReduce paper 4.6): a record the
mapper raises on (a key the reducer raises on) in two attempts is skipped, counted and listed in
OUTPUT/_logs/skipped; --max-skipped bounds how many."""

from __future__ import annotations

import collections
import re
import textwrap

import pytest

from helpers import JOBS
from mapreduce.coordinator.jobs import task_header
from mapreduce.errors import TooManySkippedError
from mapreduce.local import run_job
from mapreduce.scheduler import Assign, FailJob, Scheduler, SchedulerSettings

JOB = str(JOBS / "crashes_on_marked.py")
WORD = re.compile(r"[a-z]+")


def of(kind, instructions):
    return [i for i in instructions if isinstance(i, kind)]


def make(max_skipped=100, max_attempts=4):
    s = Scheduler(SchedulerSettings())
    out = s.worker_ready("w1", 1, 0.0)
    out += s.add_job(
        "j", ["split 0"], 1, max_attempts, 10, 0.0, skip_bad_records=True, max_skipped=max_skipped
    )
    return s, out


def crash(record_id, where="f, line 3: 'x'"):
    return {
        "type": "ValueError",
        "message": "ValueError: boom (while mapping f, line 3)",
        "record": {"id": record_id, "where": where, "cause": "ValueError: boom"},
    }


def fail(s, assign, error, now=1.0):
    return s.attempt_failed(assign.worker, "j", assign.task.id, assign.attempt, error, False, now)


def test_a_record_failing_twice_is_skipped_and_its_failures_do_not_count():
    s, out = make(max_attempts=2)
    (a,) = of(Assign, out)
    out = fail(s, a, crash(7))
    (a,) = of(Assign, out)
    assert a.task.skip == {}
    out = fail(s, a, crash(7))  # twice: skipped from now on, and the task is not out of attempts
    (a,) = of(Assign, out)
    assert not of(FailJob, out)
    assert a.task.skip == {7: "f, line 3: 'x': ValueError: boom"} and a.task.failures == 0
    # Three more bad records, each failing twice, with max_attempts 2: each is skipped in turn.
    for record in (9, 11, 13):
        out = fail(s, a, crash(record))
        (a,) = of(Assign, out)
        out = fail(s, a, crash(record))
        (a,) = of(Assign, out)
    assert sorted(a.task.skip) == [7, 9, 11, 13]


def test_failures_on_different_records_still_use_up_the_attempts():
    s, out = make(max_attempts=3)
    for record in (1, 2):
        (a,) = of(Assign, out)
        out = fail(s, a, crash(record))
    (a,) = of(Assign, out)
    out = fail(s, a, crash(3))
    assert of(FailJob, out) and not s.jobs["j"].map_tasks[0].skip


def test_skipping_more_than_max_skipped_fails_the_job():
    s, out = make(max_skipped=1)
    for record in (1, 1, 2):
        (a,) = of(Assign, out)
        out = fail(s, a, crash(record))
    (a,) = of(Assign, out)
    out = fail(s, a, crash(2))
    (failed,) = of(FailJob, out)
    message = failed.task.last_error["message"]
    assert "would skip 2 records, more than --max-skipped 1" in message


def test_without_the_flag_a_record_is_never_skipped():
    s = Scheduler(SchedulerSettings())
    out = s.worker_ready("w1", 1, 0.0) + s.add_job("j", ["split 0"], 1, 4, 10, 0.0)
    for _ in range(4):
        (a,) = of(Assign, out)
        out = fail(s, a, crash(5))
    assert of(FailJob, out) and s.jobs["j"].map_tasks[0].skip == {}


def test_the_skip_list_goes_to_the_attempt_in_its_header(tmp_path):
    from mapreduce.coordinator.jobs import JobRecord
    from mapreduce.coordinator.submission import JobSubmission

    submission = JobSubmission("j", b"", [{"segments": []}], ["split 0"], 1, str(tmp_path / "o"))
    record = JobRecord("j", submission, str(tmp_path / "s"), str(tmp_path / "w"), 0.0)
    header = task_header(record, "map", 0, "map-00000", 3, [], skip={7: "f, line 3"})
    assert header["skip"] == [[7, "f, line 3"]]
    assert "skip" not in task_header(record, "map", 0, "map-00000", 1, [])


# ---- real runs ------------------------------------------------------------------------------


def write_input(directory, bad_lines=(5, 40, 77)):
    directory.mkdir()
    lines = []
    for number in range(1, 121):
        text = f"alpha beta line{'x' * (number % 3)} gamma"
        if number in bad_lines:
            text += " BOOM"
        if number in (10, 90):
            text += " poison"
        lines.append(text)
    path = directory / "data.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, lines


def expected_counts(lines) -> dict:
    counts = collections.Counter(
        word for line in lines if "BOOM" not in line for word in WORD.findall(line.lower())
    )
    del counts["poison"]
    return dict(counts)


def read_output(out) -> dict:
    return {
        key: int(value)
        for part in sorted(out.glob("part-*"))
        for key, value in (line.split("\t") for line in part.read_text().splitlines())
    }


@pytest.mark.parametrize("inline", [False, True])
def test_crashing_records_and_keys_are_skipped_and_listed(tmp_path, inline):
    path, lines = write_input(tmp_path / "in")
    out = tmp_path / "out"
    result = run_job(
        JOB,
        [str(tmp_path / "in")],
        str(out),
        workers=2,
        reducers=2,
        split_size=1024,
        min_split_size=512,
        skip_bad_records=True,
        inline=inline,
    )
    assert read_output(out) == expected_counts(lines)
    assert result.counters["records_skipped"] == 4  # three lines, one key
    listed = (out / "_logs" / "skipped").read_text().splitlines()
    assert len(listed) == 4
    for number in (5, 40, 77):
        assert any(
            f"{path}, line {number}: " in line and "this line blows up" in line for line in listed
        ), listed
    assert any("key 'poison'" in line and "poisoned key" in line for line in listed), listed
    assert not (out / "_skipped").exists()


def test_more_than_max_skipped_fails_the_job_and_writes_nothing(tmp_path):
    write_input(tmp_path / "in")
    with pytest.raises(TooManySkippedError, match="more than --max-skipped 2"):
        run_job(
            JOB,
            [str(tmp_path / "in")],
            str(tmp_path / "out"),
            workers=2,
            reducers=1,
            skip_bad_records=True,
            max_skipped=2,
        )
    assert not (tmp_path / "out").exists()


def test_malformed_records_are_listed_and_count_toward_max_skipped(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    lines = ['{"w": "a"}', "{not json", '{"w": "b"}', "[1,", '{"w": "a"}', "}"]
    (data / "records.jsonl").write_text("\n".join(lines) + "\n")
    job = tmp_path / "job.py"
    job.write_text(
        "INPUT_FORMAT = 'jsonl'\n\ndef mapper(path, record):\n    yield record['w'], 1\n\n"
        "def reducer(word, counts):\n    yield word, sum(counts)\n"
    )
    out = tmp_path / "out"
    result = run_job(str(job), [str(data)], str(out), workers=1, reducers=1, skip_bad_records=True)
    assert read_output(out) == {"a": 2, "b": 1}
    assert result.counters["bad_records_skipped"] == 3
    listed = (out / "_logs" / "skipped").read_text().splitlines()
    assert len(listed) == 3 and all("records.jsonl: malformed: not JSON" in x for x in listed)
    with pytest.raises(
        TooManySkippedError, match="would skip 3 records, more than --max-skipped 2"
    ):
        run_job(
            str(job),
            [str(data)],
            str(tmp_path / "out2"),
            workers=1,
            reducers=1,
            skip_bad_records=True,
            max_skipped=2,
        )
    assert not (tmp_path / "out2").exists()


def test_a_multi_step_job_lists_what_every_step_skipped(tmp_path):
    path, lines = write_input(tmp_path / "in", bad_lines=(7,))
    job = tmp_path / "job.py"
    job.write_text(
        textwrap.dedent(
            """
            def words(path, line):
                if "BOOM" in line:
                    raise ValueError("this line blows up")
                for word in line.split():
                    yield word, 1

            def total(word, counts):
                yield word, sum(counts)

            def by_count(word, count):
                yield count, word

            def names(count, words):
                if count == 2:
                    raise RuntimeError("two is unlucky")
                yield count, sorted(words)

            STEPS = [
                {"mapper": words, "reducer": total},
                {"mapper": by_count, "reducer": names},
            ]
            """
        )
    )
    out = tmp_path / "out"
    run_job(
        str(job), [str(tmp_path / "in")], str(out), workers=2, reducers=2, skip_bad_records=True
    )
    listed = (out / "_logs" / "skipped").read_text().splitlines()
    assert len(listed) == 2
    assert listed[0].startswith("step 1\tmap-") and f"{path}, line 7: " in listed[0]
    assert listed[1].startswith("reduce-") and "key 2: RuntimeError: two is unlucky" in listed[1]


def test_the_kept_count_of_skipped_records_is_what_the_tasks_say_after_every_event():
    """skipped() is kept as tasks change (not summed over every task per result): records the
    tasks are told to skip, plus the malformed ones accepted attempts skipped."""
    s = Scheduler(SchedulerSettings())
    out = s.worker_ready("w1", 1, 0.0) + s.worker_ready("w2", 1, 0.0)
    out += s.add_job("j", ["split 0", "split 1"], 1, 9, 10, 0.0, skip_bad_records=True)
    job = s.jobs["j"]

    def check():
        assert job.skipped() == sum(
            len(t.skip)
            + int(((t.result or {}).get("counters") or {}).get("bad_records_skipped", 0))
            for t in job.all_tasks()
        )

    def malformed(n):
        return {"files": {}, "counters": {"bad_records_skipped": n}}

    a, b = of(Assign, out)
    for n, record in enumerate((7, 7, 8, 8)):  # two records, each failing two attempts
        out = s.attempt_failed(a.worker, "j", a.task.id, a.attempt, crash(record), False, 1.0 + n)
        check()
        (a,) = of(Assign, out)
    assert job.skipped() == 2
    out = s.attempt_succeeded(a.worker, "j", a.task.id, a.attempt, malformed(3), 6.0)
    check()
    out = s.publish_failed("j", a.task.id, {"message": "disk full"}, 6.5)  # its report is gone
    check()
    (a,) = [x for x in of(Assign, out) if x.task.id == a.task.id]
    s.attempt_succeeded(a.worker, "j", a.task.id, a.attempt, malformed(1), 7.0)
    s.task_published("j", a.task.id, 7.0)
    out = s.attempt_succeeded(b.worker, "j", b.task.id, b.attempt, malformed(2), 7.0)
    out += s.task_published("j", b.task.id, 7.0)
    check()
    (r,) = of(Assign, out)
    s.map_output_lost(r.worker, "j", r.task.id, r.attempt, b.task.id, {}, 8.0)  # b runs again
    check()
    assert job.skipped() == 3
