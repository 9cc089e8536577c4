"""Issue 19: a map task that keeps losing its process is re-planned into smaller tasks.

The scheduler's decision (events in, instructions out), the pure cutting of a split, the joining
of a map-only task's pieces into its one part, and the message when even the smallest piece keeps
dying. The end-to-end runs of a crashing job are in test_crash_jobs.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mapreduce import commit, output
from mapreduce.coordinator import JobSubmission
from mapreduce.errors import TaskFailedError
from mapreduce.inputs import Segment, Split, cut_split, read_records
from mapreduce.inputs.readers import BY_FILE, BY_LINE, BY_ROW_GROUP
from mapreduce.output import join_parts, part_writer
from mapreduce.scheduler import (
    Abandon,
    Assign,
    CommitJob,
    FailJob,
    PublishTask,
    ReplanTask,
    Scheduler,
    SchedulerSettings,
)
from mapreduce.tasks import AttemptState, TaskState

# ---- the scheduler ------------------------------------------------------------------------------


def of(kind, instructions):
    return [i for i in instructions if isinstance(i, kind)]


def fake_cut(split: dict) -> list:
    """A split here is {"files": [[name, lines], ...]}: several files give one piece each, one
    file of more than one line gives its two halves, one line cannot be cut."""
    files = split["files"]
    if len(files) > 1:
        return [({"files": [f]}, f[0]) for f in files]
    ((name, lines),) = files
    if lines < 2:
        return []
    half = lines // 2
    return [
        ({"files": [[name, half]]}, f"{name}/a"),
        ({"files": [[name, lines - half]]}, f"{name}/b"),
    ]


def make(splits, reduces=1, workers=("w1",), cut=fake_cut, max_losses=10):
    s = Scheduler(SchedulerSettings(heartbeat_interval=1.0, liveness=3))
    out = []
    for w in workers:
        out += s.worker_ready(w, 1, 0.0)
    wheres = [", ".join(name for name, _ in split["files"]) for split in splits]
    out += s.add_job("j", wheres, reduces, 4, max_losses, 0.0, map_splits=splits, cut=cut)
    return s, out


def died(s, assign, now=1.0, status=1):
    error = {"type": "ExecutorDied", "message": "died", "exit": {"status": status}}
    return s.attempt_failed(assign.worker, "j", assign.task.id, assign.attempt, error, True, now)


def finish(s, assign, now=1.0, result=None):
    out = s.attempt_succeeded(
        assign.worker, "j", assign.task.id, assign.attempt, result or {"files": {}}, now
    )
    for publish in of(PublishTask, out):
        out += s.task_published("j", publish.task.id, now)
    return out


def test_a_grouped_split_that_loses_its_process_is_replaced_by_one_task_per_file_in_its_place():
    s, out = make([{"files": [["a", 1], ["b", 1], ["c", 1]]}, {"files": [["d", 1]]}])
    (first,) = of(Assign, out)
    assert first.task.id == "map-00000"
    out = died(s, first)
    (replan,) = of(ReplanTask, out)
    assert replan.task.id == "map-00000" and replan.task.state is TaskState.REPLANNED
    assert [p.id for p in replan.pieces] == ["map-00000.0", "map-00000.1", "map-00000.2"]
    assert [p.split for p in replan.pieces] == [{"files": [[n, 1]]} for n in "abc"]
    assert [p.where for p in replan.pieces] == ["a", "b", "c"]
    assert all(p.index == 0 and p.losses == 0 for p in replan.pieces)
    # The pieces take the task's place, in order: reducers read map outputs in this order.
    job = s.jobs["j"]
    assert [t.id for t in job.map_tasks] == [
        "map-00000.0",
        "map-00000.1",
        "map-00000.2",
        "map-00001",
    ]
    assert job.task("map-00000") is replan.task and job.task("map-00000.1") is replan.pieces[1]
    (next_assign,) = of(Assign, out)
    assert next_assign.task.id == "map-00000.0" and next_assign.task.split == {"files": [["a", 1]]}
    # The lost attempt was counted on the replaced task; the pieces start afresh.
    assert replan.task.losses == 1 and replan.task.deaths == 1


def test_reducers_wait_for_every_piece_and_the_job_commits_once_all_succeeded():
    s, out = make([{"files": [["a", 1], ["b", 1]]}, {"files": [["c", 1]]}], workers=("w1", "w2"))
    a0, a1 = of(Assign, out)
    out = died(s, a0) + finish(s, a1)
    assigned = of(Assign, out)
    assert {a.task.id for a in assigned} == {"map-00000.0", "map-00000.1"}
    assert s.jobs["j"].pieces_by_part() == {}  # its reducers read the pieces' outputs
    out = finish(s, assigned[0])
    assert not [a for a in of(Assign, out) if a.task.kind == "reduce"]
    out = finish(s, assigned[1])
    (reduce,) = of(Assign, out)
    assert reduce.task.kind == "reduce"
    assert of(CommitJob, finish(s, reduce)) == [CommitJob("j")]


def test_a_piece_that_keeps_dying_is_cut_in_halves_and_only_the_smallest_use_up_the_limit():
    s, out = make([{"files": [["a", 2], ["b", 1]]}], max_losses=3)
    (a,) = of(Assign, out)
    out = died(s, a)  # 2 files: one task each
    (a,) = of(Assign, out)
    assert a.task.id == "map-00000.0"
    out = died(s, a)  # a file of 2 lines: two halves
    (replan,) = of(ReplanTask, out)
    assert [p.id for p in replan.pieces] == ["map-00000.0.0", "map-00000.0.1"]
    assert [t.id for t in s.jobs["j"].map_tasks] == [
        "map-00000.0.0",
        "map-00000.0.1",
        "map-00000.1",
    ]
    for attempt in (1, 2):  # one line cannot be cut: its losses count towards the limit
        (a,) = of(Assign, out)
        assert (a.task.id, a.attempt) == ("map-00000.0.0", attempt)
        out = died(s, a, status=7)
        assert not of(ReplanTask, out) and not of(FailJob, out)
    (a,) = of(Assign, out)
    out = s.attempt_failed(
        a.worker,
        "j",
        a.task.id,
        a.attempt,
        {"type": "WorkerLost", "message": "worker w1 was lost: silent for more than 3 s"},
        True,
        2.0,
    )
    (fail,) = of(FailJob, out)
    assert fail.task.id == "map-00000.0.0" and fail.task.losses == 3
    assert fail.task.deaths == 2 and fail.task.last_exit == {"status": 7}


def test_user_errors_never_replan_and_reduce_tasks_are_never_cut():
    s, out = make([{"files": [["a", 1], ["b", 1]]}])
    (a,) = of(Assign, out)
    out = s.attempt_failed("w1", "j", a.task.id, a.attempt, {"message": "boom"}, False, 1.0)
    assert not of(ReplanTask, out)
    (a,) = of(Assign, out)
    assert a.task.id == "map-00000" and a.attempt == 2
    (r,) = of(Assign, finish(s, a))
    assert r.task.kind == "reduce"
    out = died(s, r)
    assert not of(ReplanTask, out) and of(Assign, out)[0].task.id == "reduce-00000"


def test_without_a_cut_a_lost_attempt_is_simply_retried():
    s, out = make([{"files": [["a", 1], ["b", 1]]}], cut=None)
    (a,) = of(Assign, out)
    (again,) = of(Assign, died(s, a))
    assert (again.task.id, again.attempt) == ("map-00000", 2)


def test_replanning_abandons_a_backup_and_late_reports_of_the_replaced_task_are_discarded():
    s, out = make([{"files": [["a", 1], ["b", 1]]}], workers=("w1", "w2"))
    (a,) = of(Assign, out)
    for w in ("w1", "w2"):
        s.heard_from(w, 20.0)
    (backup,) = of(Assign, s.tick(20.0))  # a straggler gets a backup on the idle worker
    assert backup.task.id == "map-00000" and backup.attempt == 2
    out = died(s, a, now=20.1)
    assert of(Abandon, out) == [Abandon(backup.worker, "j", "map-00000", 2)]
    assert s.jobs["j"].task("map-00000").attempts[1].state is AttemptState.KILLED
    assert {x.task.id for x in of(Assign, out)} == {"map-00000.0", "map-00000.1"}
    late = finish(s, backup, 20.2)  # the abandoned backup's result arrives anyway
    assert not of(PublishTask, late)
    assert s.jobs["j"].task("map-00000").state is TaskState.REPLANNED


def test_replanning_is_the_same_however_often_it_is_replayed():
    def history():
        s, out = make([{"files": [["a", 3], ["b", 1]]}])
        (a,) = of(Assign, out)
        out = died(s, a)
        (a,) = of(Assign, out)
        died(s, a)
        return [(t.id, t.split, t.where) for t in s.jobs["j"].map_tasks]

    assert history() == history()
    # A journal replays the same cut with replan_task: the same pieces.
    s, _ = make([{"files": [["a", 3], ["b", 1]]}])
    s.replan_task("j", "map-00000", 1.0)
    s.replan_task("j", "map-00000.0", 1.0)
    assert [(t.id, t.split, t.where) for t in s.jobs["j"].map_tasks] == history()
    assert s.replan_task("j", "map-00000.1", 1.0) == []  # one line: nothing to cut


def test_a_map_only_jobs_pieces_are_grouped_by_the_part_they_make():
    s, out = make(
        [{"files": [["a", 1]]}, {"files": [["b", 1], ["c", 1]]}], reduces=0, workers=("w1", "w2")
    )
    a0, a1 = of(Assign, out)
    out = died(s, a1) + finish(s, a0)
    assert s.jobs["j"].pieces_by_part() == {1: ["map-00001.0", "map-00001.1"]}
    pieces = of(Assign, out)
    assert [p.task.id for p in pieces] == ["map-00001.0", "map-00001.1"]
    assert all(p.task.index == 1 for p in pieces)  # a piece writes its task's part number
    out = finish(s, pieces[0]) + finish(s, pieces[1])
    assert of(CommitJob, out) == [CommitJob("j")]


# ---- cutting a split: a pure function ------------------------------------------------------------


def test_a_split_of_several_segments_is_cut_into_one_split_per_segment():
    segments = (Segment("/d/a", 0, 10), Segment("/d/b", 0, 0), Segment("/d/c", 5, 9))
    pieces = cut_split(Split(3, segments), BY_FILE)
    assert pieces == [Split(3, (segment,)) for segment in segments]


def test_a_line_segment_is_cut_in_halves_down_to_the_minimum_piece_size():
    split = Split(2, (Segment("/d/a.txt", 100, 1100),))
    first, second = cut_split(split, BY_LINE, min_piece_bytes=100)
    assert first == Split(2, (Segment("/d/a.txt", 100, 600),))
    assert second == Split(2, (Segment("/d/a.txt", 600, 1100),))
    assert cut_split(split, BY_LINE, min_piece_bytes=100) == [first, second]  # the same every time
    assert cut_split(split, BY_LINE, min_piece_bytes=501) == []  # halves below the minimum
    assert cut_split(split, BY_FILE, min_piece_bytes=1) == []  # a whole-file format
    assert cut_split(Split(0, (Segment("/d/a.txt.gz", 0, 5000),)), BY_LINE, 1) == []  # compressed
    assert cut_split(Split(0, ()), BY_LINE, 1) == []


def test_a_parquet_segment_is_cut_by_row_group():
    split = Split(1, (Segment("/d/t.parquet", 2, 7, "row groups"),))
    assert cut_split(split, BY_ROW_GROUP) == [
        Split(1, (Segment("/d/t.parquet", 2, 4, "row groups"),)),
        Split(1, (Segment("/d/t.parquet", 4, 7, "row groups"),)),
    ]
    assert cut_split(Split(1, (Segment("/d/t.parquet", 2, 3, "row groups"),)), BY_ROW_GROUP) == []


def test_the_halves_of_a_text_segment_read_exactly_its_lines_wherever_the_cut_falls(tmp_path):
    path = tmp_path / "text.txt"
    lines = [f"line {n} " + "x" * (n * 7 % 23) for n in range(200)]
    path.write_text("\n".join(lines) + "\n")
    whole = Split(0, (Segment(str(path), 0, path.stat().st_size),))
    pieces = [whole]
    for _ in range(5):  # cut every piece again, down to pieces of a few lines
        pieces = [p for piece in pieces for p in (cut_split(piece, BY_LINE, 64) or [piece])]
    assert len(pieces) == 32
    read = [value for piece in pieces for _, value in read_records(piece, "lines")]
    assert read == lines


def test_the_coordinators_cut_works_on_the_wire_form():
    cut = JobSubmission("j", b"", [], [], 0, "/out", split_by=BY_LINE).cut
    wire = Split(4, (Segment("/d/a", 0, 10), Segment("/d/b", 0, 20))).to_wire()
    assert cut(wire) == [
        ({"index": 4, "segments": [["/d/a", 0, 10]]}, "/d/a bytes 0-10"),
        ({"index": 4, "segments": [["/d/b", 0, 20]]}, "/d/b bytes 0-20"),
    ]
    assert cut({"nonsense": True}) == []


# ---- a map-only task's pieces joined into its one part ------------------------------------------

ROWS = [("k", 1), ("é\tx", 2.5), (3, ("a", 1)), ("z", None), ("w", "v")] * 3


def _write_part(directory, index, output_format, pairs):
    writer = part_writer(str(directory), index, output_format)
    for key, value in pairs:
        writer.write(key, value)
    writer.close()


@pytest.mark.parametrize("output_format", ["text", "jsonl", "parquet"])
@pytest.mark.parametrize("rows", [ROWS, [(f"w{n}", n) for n in range(2500)]], ids=["mixed", "ints"])
def test_pieces_joined_make_the_part_one_task_would_have_written(tmp_path, output_format, rows):
    _write_part(tmp_path / "whole", 7, output_format, rows)
    cuts = [0, 1, 1, len(rows) // 2, len(rows)]  # an empty piece too
    sources = []
    for n, (start, end) in enumerate(zip(cuts, cuts[1:])):
        sources.append(str(tmp_path / f"piece{n}"))
        _write_part(sources[-1], 7, output_format, rows[start:end])
    joined = tmp_path / "joined"
    joined.mkdir()
    join_parts(sources, str(joined), 7, output_format)
    (expected,) = (tmp_path / "whole").iterdir()
    assert (joined / expected.name).read_bytes() == expected.read_bytes()


def test_arrow_pieces_keep_their_pairs_in_order_without_being_decoded(tmp_path):
    from mapreduce.shuffle import RunReader

    rows = [(f"k{n}", n) for n in range(2500)] + [("t", (1, 2))]
    cuts = [0, 0, 1200, len(rows)]
    sources = []
    for n, (start, end) in enumerate(zip(cuts, cuts[1:])):
        sources.append(str(tmp_path / f"piece{n}"))
        _write_part(sources[-1], 2, "arrow", rows[start:end])
    joined = tmp_path / "joined"
    joined.mkdir()
    join_parts(sources, str(joined), 2, "arrow")
    names = sorted(p.name for p in joined.iterdir())  # name order, as the next step reads
    assert names[0] == "part-00002-00000.arrow" and len(names) > 1
    read = [pair for name in names for pair in RunReader(str(joined / name)).records()]
    assert read == rows


def test_join_pieces_puts_each_part_in_staging_and_removes_the_pieces(tmp_path):
    staging = tmp_path / "staging"
    (staging / commit.ATTEMPTS_DIR).mkdir(parents=True)
    for task, pairs in (("map-00001.0", [("a", 1)]), ("map-00001.1", [("b", 2)])):
        _write_part(commit.attempt_dir(str(staging), task, 3), 1, "text", pairs)
        commit.publish_piece(str(staging), task, 3)
    commit.join_pieces(str(staging), {1: ["map-00001.0", "map-00001.1"]}, "text")
    assert (staging / "part-00001").read_text() == "a\t1\nb\t2\n"
    assert not (staging / commit.PIECES_DIR).exists()


def test_an_arrow_join_cut_short_by_a_restart_is_finished_by_the_next_commit(tmp_path, monkeypatch):
    from mapreduce import storage
    from mapreduce.shuffle import RunReader

    monkeypatch.setattr(output, "_SIZE_SAMPLE", 3)
    monkeypatch.setattr(output, "ROW_GROUP_ROWS", 3)
    staging = tmp_path / "staging"
    (staging / commit.ATTEMPTS_DIR).mkdir(parents=True)
    rows = [(f"k{n}", n) for n in range(20)]
    tasks = {"map-00004.0": rows[:8], "map-00004.1": rows[8:]}
    for task, pairs in tasks.items():
        _write_part(commit.attempt_dir(str(staging), task, 1), 4, "arrow", pairs)
        commit.publish_piece(str(staging), task, 1)
    real_move, moved = storage.move, []

    def move_then_die(source, target):  # the coordinator is killed after the third move
        if len(moved) == 3:
            raise KeyboardInterrupt("killed")
        real_move(source, target)
        moved.append(target)

    monkeypatch.setattr(storage, "move", move_then_die)
    with pytest.raises(KeyboardInterrupt):
        commit.join_pieces(str(staging), {4: list(tasks)}, "arrow")
    monkeypatch.setattr(storage, "move", real_move)
    # Resumed: the part files already there do not mean the part was joined whole.
    commit.join_pieces(str(staging), {4: list(tasks)}, "arrow")
    names = sorted(p.name for p in staging.iterdir() if p.name.startswith("part-"))
    assert len(names) > 3
    assert [pair for name in names for pair in RunReader(str(staging / name)).records()] == rows
    assert not (staging / commit.PIECES_DIR).exists()


def test_parquet_json_text_columns_are_joined_from_their_values(tmp_path):
    rows = [("a", 1), ("b", "x"), ("c", [1, "y"])]
    sources = []
    for n, row in enumerate(rows):
        sources.append(str(tmp_path / f"p{n}"))
        _write_part(sources[-1], 0, "parquet", [row])
    _write_part(tmp_path / "whole", 0, "parquet", rows)
    out = tmp_path / "out"
    out.mkdir()
    join_parts(sources, str(out), 0, "parquet")
    table = pq.read_table(out / "part-00000.parquet")
    assert table.schema.field("value").metadata == {b"encoding": b"json"}
    assert [json.loads(v) for v in table.column("value").to_pylist()] == [1, "x", [1, "y"]]
    assert table.equals(pq.read_table(tmp_path / "whole" / "part-00000.parquet"))
    assert isinstance(table, pa.Table)


# ---- what the user reads when even the smallest piece keeps dying -------------------------------


def test_the_failure_says_the_process_died_how_and_what_to_do():
    error = TaskFailedError(
        "map",
        3,
        "/d/a.txt",
        10,
        "the process running it exited with status 1",
        lost=True,
        deaths=10,
        last_exit={"status": 1},
        piece="0.1",
    ).paragraph()
    assert error.startswith(
        "map task 3, piece 0.1 (/d/a.txt) failed: the process running it died 10 times"
    )
    assert "exited with status 1" in error and "os._exit" in error and "--inline" in error


def test_the_failure_names_a_signal_and_lost_connections_apart():
    error = TaskFailedError(
        "map",
        0,
        "x",
        10,
        "worker w2 was lost: silent for more than 3 s",
        lost=True,
        deaths=4,
        last_exit={"signal": "SIGKILL"},
    ).paragraph()
    assert "died 4 time(s) (the last time it was killed by signal SIGKILL)" in error
    assert "the connection to its worker was lost 6 time(s)" in error
    assert "not the job's code" in error and "--liveness" in error
    lost = TaskFailedError("map", 0, "x", 10, "worker w2 was lost", lost=True, deaths=0).paragraph()
    assert "10 of its attempts were lost with the connection to their worker" in lost


# ---- submit plans splits for the workers there are ----------------------------------------------


class StatusSequence:
    """A client whose STATUS shows these worker capacities, one list per call (the last repeats)."""

    def __init__(self, *capacities):
        self.capacities = list(capacities)
        self.calls = 0

    def status(self):
        self.calls += 1
        current = self.capacities[min(self.calls, len(self.capacities)) - 1]
        return {"workers": [{"capacity": c} for c in current]}


def test_submit_plans_for_the_registered_slots_at_once_when_there_are_workers():
    from mapreduce.client import task_slots

    client = StatusSequence([1, 1, 1])
    assert task_slots(client, wait=5) == 3 and client.calls == 1
    assert task_slots(StatusSequence([1]), wait=5) == 2  # at least two, like run


def test_submit_waits_for_workers_still_starting_until_their_number_settles(monkeypatch):
    import mapreduce.client as client_module

    monkeypatch.setattr(client_module, "WORKERS_POLL_S", 0.01)
    monkeypatch.setattr(client_module, "WORKERS_SETTLE_S", 0.05)
    starting = StatusSequence([], [], [1], [1, 1], [1, 1, 2])
    assert client_module.task_slots(starting, wait=5) == 4
    assert client_module.task_slots(StatusSequence([]), wait=0.1) == 2  # nobody came


# ---- a coordinator restart replays the re-planning ----------------------------------------------


def _journalled_job(tmp_path) -> dict:
    from mapreduce.coordinator import journal as journal_module

    submission = JobSubmission(
        "wc",
        b"code",
        [{"index": 0, "segments": [[str(tmp_path / f"in{i}.txt"), 0, 10] for i in range(3)]}],
        ["3 files"],
        1,
        str(tmp_path / "out"),
        split_by=BY_LINE,
    )
    header, code = submission.to_wire()
    return {
        "type": "submitted",
        "job": "j",
        "at": 0.0,
        "request": None,
        "staging": str(tmp_path / ".out.mapreduce-j"),
        "shuffle_dir": str(tmp_path / "work" / "j"),
        "submission": header,
        "code": journal_module.encode_code(code),
    }


def test_the_journal_keeps_re_planned_tasks_in_order_and_compaction_writes_them_first(tmp_path):
    from mapreduce.coordinator.journal import compacted, fold

    records = [
        _journalled_job(tmp_path),
        {"type": "assigned", "job": "j", "task": "map-00000", "attempt": 1, "worker": "w"},
        {"type": "replanned", "job": "j", "task": "map-00000"},
        {"type": "assigned", "job": "j", "task": "map-00000.1", "attempt": 1, "worker": "w"},
        {"type": "replanned", "job": "j", "task": "map-00000.1"},
        {"type": "replanned", "job": "j", "task": "map-00000"},  # the same again: once
    ]
    job = fold(records)["j"]
    assert job.replanned == ["map-00000", "map-00000.1"]
    again = compacted({"j": job}, finished_kept=10)
    assert [r["type"] for r in again] == [
        "submitted",
        "replanned",
        "replanned",
        "attempts",
        "attempts",
    ]
    assert fold(again)["j"].replanned == job.replanned


def test_a_restarted_coordinator_cuts_the_same_pieces_and_keeps_their_published_outputs(tmp_path):
    from mapreduce.coordinator import Coordinator
    from mapreduce.coordinator.journal import LocalJournal, encode, header

    work = tmp_path / "work"
    record = _journalled_job(tmp_path)
    (Path(record["staging"]) / "_attempts").mkdir(parents=True)
    Path(record["shuffle_dir"]).mkdir(parents=True)
    records = [
        record,
        {"type": "assigned", "job": "j", "task": "map-00000", "attempt": 1, "worker": "w"},
        {"type": "replanned", "job": "j", "task": "map-00000"},
        {"type": "assigned", "job": "j", "task": "map-00000.0", "attempt": 1, "worker": "w"},
        {"type": "assigned", "job": "j", "task": "map-00000.1", "attempt": 1, "worker": "w"},
        {"type": "published", "job": "j", "task": "map-00000.0", "attempt": 1, "result": {}},
    ]
    (work / "coordinator.journal").write_bytes(encode(header()) + b"".join(map(encode, records)))
    coordinator = Coordinator(
        "tcp://127.0.0.1:*", work_dir=str(work), journal=LocalJournal(str(work))
    )
    try:
        state = coordinator.scheduler.jobs["j"]
        assert [t.id for t in state.map_tasks] == ["map-00000.0", "map-00000.1", "map-00000.2"]
        assert state.task("map-00000").state is TaskState.REPLANNED
        assert state.map_tasks[0].state is TaskState.SUCCEEDED
        out = coordinator.scheduler.worker_ready("w2", 4, time.monotonic())
        assigned = [(a.task.id, a.attempt, a.task.split["segments"]) for a in of(Assign, out)]
        assert assigned == [
            ("map-00000.1", 2, [[str(tmp_path / "in1.txt"), 0, 10]]),
            ("map-00000.2", 1, [[str(tmp_path / "in2.txt"), 0, 10]]),
        ]
    finally:
        coordinator.close(cancel_running=False)
