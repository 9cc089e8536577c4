"""The scheduling core without sockets: every fault decision, in microseconds, with injected time."""

import pytest

from mapreduce.scheduler import (
    Abandon,
    Assign,
    CommitJob,
    FailJob,
    PublishTask,
    Scheduler,
    SchedulerSettings,
)
from mapreduce.tasks import AttemptState, IllegalTransition, Task, TaskState


def of(kind, instructions):
    return [i for i in instructions if isinstance(i, kind)]


def make(maps=2, reduces=2, workers=("w1", "w2"), max_attempts=4, **settings):
    s = Scheduler(
        SchedulerSettings(
            heartbeat_interval=1.0,
            liveness=3,
            backup_min_runtime=5.0,
            backup_slowdown=3.0,
            **settings,
        )
    )
    out = []
    for w in workers:
        out += s.worker_ready(w, 1, 0.0)
    out += s.add_job("j", [f"split {i}" for i in range(maps)], reduces, max_attempts, 10, 0.0)
    return s, out


def finish(s, assign, now, result=None):
    """An attempt succeeds and, as the coordinator does, its output is published at once."""
    out = s.attempt_succeeded(
        assign.worker, assign.job, assign.task.id, assign.attempt, result or {"files": {}}, now
    )
    for publish in of(PublishTask, out):
        out += s.task_published(publish.job, publish.task.id, now)
    return out


def test_no_faults_runs_every_task_exactly_once():
    s, out = make()
    seen = []
    now = 0.0
    while not s.job_finished("j"):
        assigns = of(Assign, out)
        out = [i for i in out if not isinstance(i, Assign)]
        if of(CommitJob, out):
            s.job_committed("j")
            break
        assert assigns, out
        for a in assigns:
            seen.append(a.task.id)
            now += 0.1
            out += finish(s, a, now)
    assert sorted(seen) == ["map-00000", "map-00001", "reduce-00000", "reduce-00001"]
    assert s.jobs["j"].phase == "done"


def test_reduces_wait_for_every_map():
    s, out = make(maps=2, reduces=2)
    maps = of(Assign, out)
    assert [a.task.kind for a in maps] == ["map", "map"]
    out = finish(s, maps[0], 1.0)
    assert not of(Assign, out)  # the other map is still running: no reduce yet
    out = finish(s, maps[1], 1.0)
    assert {a.task.kind for a in of(Assign, out)} == {"reduce"}


def test_user_failure_is_retried_then_fails_the_job_after_max_attempts():
    s, out = make(maps=1, reduces=1, workers=("w1",), max_attempts=4)
    for attempt in range(1, 5):
        (a,) = of(Assign, out)
        assert a.attempt == attempt
        out = s.attempt_failed(
            "w1", "j", a.task.id, a.attempt, {"message": f"boom {attempt}"}, False, 1.0
        )
    (fail,) = of(FailJob, out)
    assert fail.task.failures == 4 and fail.task.state is TaskState.FAILED
    assert fail.task.last_error["message"] == "boom 4"
    assert s.jobs["j"].phase == "failed"


def test_lost_attempts_do_not_use_up_user_attempts_but_ten_fail_the_job():
    s, out = make(maps=1, reduces=1, workers=("w1",), max_attempts=2)
    for _ in range(9):
        (a,) = of(Assign, out)
        out = s.attempt_failed("w1", "j", a.task.id, a.attempt, {"message": "died"}, True, 1.0)
        assert not of(FailJob, out)
    (a,) = of(Assign, out)
    out = s.attempt_failed("w1", "j", a.task.id, a.attempt, {"message": "died"}, True, 1.0)
    (fail,) = of(FailJob, out)
    assert fail.task.losses == 10 and fail.task.failures == 0


def test_duplicate_and_late_completions_commit_exactly_once():
    s, out = make(maps=1, reduces=1, workers=("w1", "w2"))
    (a,) = of(Assign, out)
    first = finish(s, a, 1.0)
    assert len(of(PublishTask, first)) == 1
    again = finish(s, a, 1.1)  # the same report delivered twice
    assert not of(PublishTask, again)
    stale = s.attempt_succeeded(
        a.worker, "j", a.task.id, 99, {}, 1.2
    )  # an attempt that never existed
    assert not of(PublishTask, stale)
    assert s.jobs["j"].map_tasks[0].attempts[0].state is AttemptState.SUCCEEDED


def test_silent_worker_expires_and_its_task_moves_elsewhere_and_its_late_result_is_ignored():
    s, out = make(maps=2, reduces=1)
    a1, a2 = of(Assign, out)
    s.heard_from("w2", 3.5)
    out = s.tick(3.5)  # w1 silent for 3.5 s > 3 x 1 s
    assert "w1" not in s.workers and "w2" in s.workers
    out += finish(s, a2, 3.6)
    retry = [a for a in of(Assign, out) if a.task.id == a1.task.id]
    assert retry and retry[0].worker == "w2" and retry[0].attempt == 2
    late = finish(s, a1, 4.0)  # SIGCONT: the dead worker's result arrives
    assert not of(PublishTask, late)
    assert s.jobs["j"].map_tasks[a1.task.index].attempts[0].state is AttemptState.LOST


def test_straggler_gets_a_backup_and_the_first_to_finish_wins():
    s, out = make(maps=3, reduces=1, workers=("w1", "w2", "w3"))
    a, b, c = of(Assign, out)
    out = finish(s, a, 1.0) + finish(s, b, 1.0)
    assert not of(Assign, out)  # too early for a backup
    for w in ("w1", "w2", "w3"):
        s.heard_from(w, 10.0)
    out = s.tick(10.0)  # c has run 10 s; peers took 1 s; min runtime 5 s
    (backup,) = of(Assign, out)
    assert backup.task.id == c.task.id and backup.attempt == 2 and backup.worker != c.worker
    out = finish(s, backup, 10.5)
    assert len(of(PublishTask, out)) == 1
    assert of(Abandon, out) == [Abandon(c.worker, "j", c.task.id, 1)]
    assert not of(PublishTask, finish(s, c, 11.0))  # the original's late result is discarded


def test_worker_that_registers_again_loses_what_it_was_running():
    s, out = make(maps=1, reduces=1, workers=("w1",))
    (a,) = of(Assign, out)
    out = s.worker_ready("w1", 1, 1.0)
    (again,) = of(Assign, out)
    assert again.task.id == a.task.id and again.attempt == 2
    assert s.jobs["j"].map_tasks[0].losses == 1


def test_map_only_job_commits_after_maps():
    s, out = make(maps=2, reduces=0)
    out = [i for a in of(Assign, out) for i in finish(s, a, 1.0)]
    assert of(CommitJob, out) == [CommitJob("j")]


def test_cancel_abandons_running_attempts():
    s, out = make(maps=2, reduces=1)
    out = s.cancel_job("j")
    assert len(of(Abandon, out)) == 2 and s.jobs["j"].phase == "cancelled"
    assert all(t.state is TaskState.CANCELLED for t in s.jobs["j"].all_tasks())


def test_jobs_are_served_in_submission_order_but_idle_workers_take_the_next_job():
    s = Scheduler(SchedulerSettings())
    assert not s.add_job("a", ["a0", "a1"], 1, 4, 10, 0.0) + s.add_job(
        "b", ["b0", "b1"], 1, 4, 10, 0.0
    )
    served = []

    def serve(instructions):
        assigns = of(Assign, instructions)
        served.extend((a.worker, a.job, a.task.id) for a in assigns)
        return assigns

    (a0,) = serve(s.worker_ready("w1", 1, 0.0))  # both jobs have pending maps: a's come first
    (a1,) = serve(s.worker_ready("w2", 1, 0.0))
    (b0,) = serve(finish(s, a0, 1.0))  # a has nothing pending: the idle slot takes b's
    (a_reduce,) = serve(finish(s, a1, 2.0))  # a's reduce and b's map pending: a's first
    (b1,) = serve(finish(s, b0, 3.0))
    assert served == [
        ("w1", "a", "map-00000"),
        ("w2", "a", "map-00001"),
        ("w1", "b", "map-00000"),
        ("w2", "a", "reduce-00000"),
        ("w1", "b", "map-00001"),
    ]


def test_illegal_transitions_are_refused():
    task = Task("map", 0, "x")
    with pytest.raises(IllegalTransition):
        task.move_to(TaskState.SUCCEEDED)


def test_lost_map_output_reruns_the_map_then_the_reduce():
    s, out = make(maps=2, reduces=1, workers=("w1", "w2"))
    m0, m1 = of(Assign, out)
    out = finish(s, m0, 1.0) + finish(s, m1, 1.0)
    (r,) = of(Assign, out)
    assert r.task.kind == "reduce"
    out = s.map_output_lost(
        r.worker, "j", r.task.id, r.attempt, "map-00001", {"message": "gone"}, 2.0
    )
    assert s.jobs["j"].phase == "map"
    (rerun,) = of(Assign, out)
    assert rerun.task.id == "map-00001" and rerun.attempt == 2
    assert s.jobs["j"].reduce_tasks[0].failures == 0 and s.jobs["j"].reduce_tasks[0].losses == 1
    out = finish(s, rerun, 3.0)
    (again,) = of(Assign, out)
    assert again.task.id == r.task.id and again.attempt == 2


def test_the_job_commits_only_after_every_publish_succeeded():
    s, out = make(maps=1, reduces=1, workers=("w1",))
    out = finish(s, of(Assign, out)[0], 1.0)
    reduce_ = of(Assign, out)[0]
    accepted = s.attempt_succeeded("w1", "j", reduce_.task.id, reduce_.attempt, {"files": {}}, 2.0)
    assert of(PublishTask, accepted) and not of(CommitJob, accepted)  # not before it is in place
    assert s.jobs["j"].reduce_tasks[0].state is TaskState.PUBLISHING
    assert of(CommitJob, s.task_published("j", reduce_.task.id, 2.1))


def test_a_failed_publish_of_the_last_task_runs_it_again_instead_of_committing():
    s, out = make(maps=1, reduces=1, workers=("w1",))
    out = finish(s, of(Assign, out)[0], 1.0)
    first = of(Assign, out)[0]
    s.attempt_succeeded("w1", "j", first.task.id, first.attempt, {"files": {}}, 2.0)
    error = {"type": "PublishError", "message": "disk full"}
    again = s.publish_failed("j", first.task.id, error, 2.1)
    assert not of(CommitJob, again) and not of(FailJob, again)
    [rerun] = of(Assign, again)
    assert (rerun.task.id, rerun.attempt) == (first.task.id, 2)
    assert s.jobs["j"].reduce_tasks[0].failures == 1
    assert of(CommitJob, finish(s, rerun, 3.0))
    assert not of(Assign, s.publish_failed("j", first.task.id, error, 3.1))  # late: ignored


def test_a_publish_that_keeps_failing_fails_the_job():
    s, out = make(maps=1, reduces=1, workers=("w1",), max_attempts=2)
    out = finish(s, of(Assign, out)[0], 1.0)
    error = {"type": "PublishError", "message": "disk full"}
    for number in (1, 2):
        assign = of(Assign, out)[0]
        assert assign.attempt == number
        s.attempt_succeeded("w1", "j", assign.task.id, assign.attempt, {"files": {}}, 2.0)
        out = s.publish_failed("j", assign.task.id, error, 2.0)
    [failed] = of(FailJob, out)
    assert failed.task.state is TaskState.FAILED and failed.task.last_error == error
    assert s.jobs["j"].phase == "failed"


def test_a_permanent_failure_fails_the_job_at_once_without_retries():
    s, out = make(maps=2, reduces=1, max_attempts=4)
    first, second = of(Assign, out)
    error = {"type": "RecordError", "message": "the mapper yielded 3", "permanent": True}
    out = s.attempt_failed(first.worker, "j", first.task.id, first.attempt, error, False, 1.0)
    (failed,) = of(FailJob, out)
    assert failed.task.id == first.task.id and failed.task.failures == 1
    assert failed.task.state is TaskState.FAILED
    assert [a.attempt for a in of(Abandon, out)] == [second.attempt]  # the other map is stopped
    assert not of(Assign, out) and s.job_finished("j")


def test_an_ordinary_failure_is_still_retried_and_a_lost_permanent_one_too():
    s, out = make(maps=1, reduces=1, workers=("w1",), max_attempts=4)
    (a,) = of(Assign, out)
    out = s.attempt_failed("w1", "j", a.task.id, a.attempt, {"message": "boom"}, False, 1.0)
    (a,) = of(Assign, out)
    assert a.attempt == 2 and not of(FailJob, out)
    # "permanent" means something only for a failure of the job's code, not a lost attempt.
    lost = {"message": "worker lost", "permanent": True}
    out = s.attempt_failed("w1", "j", a.task.id, a.attempt, lost, True, 2.0)
    assert not of(FailJob, out) and of(Assign, out)[0].attempt == 3


def test_a_reduce_with_much_more_input_than_its_peers_gets_no_backup_for_running_longer():
    MiB = 1024 * 1024
    s, out = make(maps=2, reduces=3, workers=("w1", "w2", "w3", "w4"))
    sizes = {"0": 2 * MiB, "1": 2 * MiB, "2": 200 * MiB}  # each map's share: half of these
    result = {"files": {}, "shuffle_stats": {"bytes": {p: n // 2 for p, n in sizes.items()}}}
    maps = of(Assign, out)
    out = finish(s, maps[0], 1.0, result) + finish(s, maps[1], 1.0, result)
    reduces = {a.task.index: a for a in of(Assign, out)}
    assert sorted(reduces) == [0, 1, 2]
    out = finish(s, reduces[0], 2.0) + finish(s, reduces[1], 2.0)  # peers: 1 s for 2 MiB
    for now in (20.0, 250.0):  # 100 x the input: expected ~100 s, so 3 x that before a backup
        for w in ("w1", "w2", "w3", "w4"):
            s.heard_from(w, now)
        assert not of(Assign, s.tick(now)), now
    for w in ("w1", "w2", "w3", "w4"):
        s.heard_from(w, 400.0)
    (backup,) = of(Assign, s.tick(400.0))  # a slow machine is still caught, later
    assert backup.task.index == 2 and backup.attempt == 2


def test_a_reduce_with_as_much_input_as_its_peers_gets_a_backup_when_slow():
    MiB = 1024 * 1024
    s, out = make(maps=2, reduces=3, workers=("w1", "w2", "w3", "w4"))
    sizes = {"0": 2 * MiB, "1": 2 * MiB, "2": 2 * MiB}
    result = {"files": {}, "shuffle_stats": {"bytes": {p: n // 2 for p, n in sizes.items()}}}
    maps = of(Assign, out)
    out = finish(s, maps[0], 1.0, result) + finish(s, maps[1], 1.0, result)
    reduces = {a.task.index: a for a in of(Assign, out)}
    out = finish(s, reduces[0], 2.0) + finish(s, reduces[1], 2.0)
    for w in ("w1", "w2", "w3", "w4"):
        s.heard_from(w, 10.0)
    (backup,) = of(Assign, s.tick(10.0))  # 9 s against a 1 s median: a slow machine
    assert backup.task.index == 2 and backup.worker != reduces[2].worker


def test_a_reduce_whose_peers_read_nothing_is_expected_to_take_as_long_as_the_maps_per_byte():
    """Issue 21's job: every record under one key, so the other partition is empty and its reduce
    ends at once; the giant reduce is then judged by the maps' seconds per byte of output."""
    MiB = 1024 * 1024
    s, out = make(maps=2, reduces=2, workers=("w1", "w2", "w3"))
    result = {"files": {}, "shuffle_stats": {"bytes": {"1": 100 * MiB}}}  # each map: 100 MiB
    maps = of(Assign, out)
    out = finish(s, maps[0], 40.0, result) + finish(s, maps[1], 40.0, result)  # 40 s each
    reduces = {a.task.index: a for a in of(Assign, out)}
    out = finish(s, reduces[0], 40.0)  # the empty partition: done in no time
    for now in (60.0, 250.0):  # 200 MiB at 0.4 s per MiB: ~80 s, so 3 x that before a backup
        for w in ("w1", "w2", "w3"):
            s.heard_from(w, now)
        assert not of(Assign, s.tick(now)), now
    for w in ("w1", "w2", "w3"):
        s.heard_from(w, 300.0)
    (backup,) = of(Assign, s.tick(300.0))
    assert backup.task.index == 1


def test_counts_kept_for_progress_reports_match_the_tasks_after_every_event():
    """The scheduler keeps done and attempt counts, and the coordinator running counter totals,
    as tasks change (a WATCH reads them); after each event they equal a count over the tasks."""
    from mapreduce.coordinator import jobs
    from mapreduce.coordinator.submission import JobSubmission

    s, out = make(maps=3, reduces=2, workers=("w1", "w2", "w3"))
    record = jobs.JobRecord("j", JobSubmission("j", b"", [], [], 2, "/nowhere"), "", "", 0.0)

    def check():
        state = s.jobs["j"]
        attempts = [a for t in state.all_tasks() for a in t.attempts]
        counts = jobs.progress(s, record, 50.0)
        assert counts["maps_done"] == sum(t.state is TaskState.SUCCEEDED for t in state.map_tasks)
        assert counts["reduces_done"] == sum(
            t.state is TaskState.SUCCEEDED for t in state.reduce_tasks
        )
        assert (counts["attempts"], counts["failed"], counts["lost"], counts["backups"]) == (
            len(attempts),
            sum(a.state is AttemptState.FAILED for a in attempts),
            sum(a.state is AttemptState.LOST for a in attempts),
            sum(a.backup for a in attempts),
        )
        assert jobs.running_counters(s, record) == jobs.job_counters(s, record)

    def result(n):
        return {"files": {"0": [f"m{n}"]}, "counters": {"map_output_records": n}}

    a, b, c = of(Assign, out)
    out = s.attempt_failed("w1", "j", a.task.id, a.attempt, {"message": "boom"}, False, 1.0)
    check()
    (a,) = of(Assign, out)
    out = finish(s, a, 2.0, result(1)) + finish(s, b, 2.0, result(2))
    check()
    for w in ("w1", "w2", "w3"):
        s.heard_from(w, 12.0)
    (backup,) = of(Assign, s.tick(12.0))  # c has run 12 s against a median of 2 s
    check()
    out = s.attempt_failed(backup.worker, "j", c.task.id, backup.attempt, {}, True, 12.5)
    check()
    out = finish(s, c, 13.0, result(4))
    check()
    r1, r2 = of(Assign, out)
    # A reducer cannot read a map output: the map runs again, its counters leave the totals.
    out = s.map_output_lost(r1.worker, "j", r1.task.id, r1.attempt, a.task.id, {}, 14.0)
    check()
    again = [x for x in of(Assign, out) if x.task.id == a.task.id]
    out = finish(s, again[0], 15.0, result(8))
    check()
    assert jobs.running_counters(s, record)["map_output_records"] == 14


def test_a_freed_slot_takes_the_next_pending_task_at_once_but_the_last_map_waits_for_publish():
    # Three maps, one worker: its DONE frees the slot, and the next map is assigned in the same
    # breath (the TASK can follow the ACK), before the publish comes back.
    s, out = make(maps=3, reduces=2, workers=("w1",))
    (first,) = of(Assign, out)
    out = s.attempt_succeeded("w1", "j", first.task.id, first.attempt, {"files": {}}, 1.0)
    assert len(of(PublishTask, out)) == 1
    (second,) = of(Assign, out)
    assert second.worker == "w1" and second.task.kind == "map" and second.task != first.task
    out += s.task_published("j", first.task.id, 1.0)
    out = s.attempt_succeeded("w1", "j", second.task.id, second.attempt, {"files": {}}, 2.0)
    (third,) = of(Assign, out)
    s.task_published("j", second.task.id, 2.0)
    # The last map: nothing is pending in its phase, so its slot waits for the publish, after
    # which the reduce phase is what runs next (not a backup, not another job's task).
    out = s.attempt_succeeded("w1", "j", third.task.id, third.attempt, {"files": {}}, 3.0)
    assert of(PublishTask, out) and not of(Assign, out)
    out = s.task_published("j", third.task.id, 3.0)
    (reduce,) = of(Assign, out)
    assert reduce.task.kind == "reduce" and reduce.worker == "w1"
