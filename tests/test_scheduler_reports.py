"""Reconciling what a worker reports in its heartbeat with what it was assigned (`worker_report`):
lost TASKs are sent again, attempts nobody runs are cancelled. No sockets, time injected."""

from mapreduce.scheduler import Abandon, Assign, PublishTask, Scheduler, SchedulerSettings
from mapreduce.tasks import AttemptState, TaskState


def of(kind, instructions):
    return [i for i in instructions if isinstance(i, kind)]


def make(maps=1, reduces=1, workers=("w1",), **settings):
    s = Scheduler(SchedulerSettings(heartbeat_interval=1.0, liveness=3, **settings))
    out = []
    for w in workers:
        out += s.worker_ready(w, 1, 0.0)
    out += s.add_job("j", [f"split {i}" for i in range(maps)], reduces, 4, 10, 0.0)
    return s, out


def key(assign):
    return (assign.job, assign.task.id, assign.attempt)


def test_tasks_sent_to_a_worker_are_numbered_one_by_one():
    s, out = make(maps=2, reduces=0, workers=("w1", "w2"))
    assert sorted(a.seq for a in of(Assign, out)) == [1, 1]  # one each: numbered per worker
    s2, out2 = make(maps=3, reduces=0, workers=("w1",))
    seqs = [of(Assign, out2)[0].seq]
    for n in range(2):
        a = of(Assign, out2)[0]
        out2 = s2.attempt_succeeded("w1", "j", a.task.id, a.attempt, {}, 1.0 + n)
        out2 += s2.task_published("j", a.task.id, 1.0 + n)
        seqs.append(of(Assign, out2)[0].seq)
    assert seqs == [1, 2, 3]


def test_a_report_that_lists_the_attempt_changes_nothing():
    s, out = make()
    (a,) = of(Assign, out)
    assert s.worker_report("w1", [key(a)], [], a.seq, 0.5) == []
    assert s.worker_report("w1", [], [key(a)], a.seq, 0.6) == []  # its result awaits an ACK


def test_an_unlisted_attempt_whose_task_may_still_be_on_its_way_is_left_alone():
    s, out = make()
    (a,) = of(Assign, out)
    assert s.worker_report("w1", [], [], a.seq - 1, 0.5) == []


def test_a_lost_task_is_sent_again_as_the_same_attempt_with_a_new_number():
    s, out = make()
    (a,) = of(Assign, out)
    out = s.worker_report("w1", [], [], a.seq, 0.5)
    (again,) = of(Assign, out)
    assert (again.worker, again.task.id, again.attempt) == ("w1", a.task.id, a.attempt)
    assert again.seq > a.seq
    task = s.jobs["j"].map_tasks[0]
    assert len(task.attempts) == 1 and task.losses == 0 and task.state is TaskState.RUNNING
    # The old number's report no longer says anything about the new TASK.
    assert s.worker_report("w1", [], [], a.seq, 0.6) == []
    # The sent-again TASK arrived: the attempt finishes as usual, once.
    assert s.worker_report("w1", [key(a)], [], again.seq, 0.7) == []
    done = s.attempt_succeeded("w1", "j", a.task.id, a.attempt, {"files": {}}, 0.8)
    assert len(of(PublishTask, done)) == 1


def test_a_task_lost_too_often_counts_as_a_lost_attempt_and_runs_again():
    s, out = make(task_resends=2)
    (a,) = of(Assign, out)
    seq = a.seq
    for now in (0.5, 1.0):
        (again,) = of(Assign, s.worker_report("w1", [], [], seq, now))
        assert again.attempt == a.attempt
        seq = again.seq
    out = s.worker_report("w1", [], [], seq, 1.5)
    (rerun,) = of(Assign, out)
    assert rerun.attempt == a.attempt + 1 and rerun.task.id == a.task.id
    task = s.jobs["j"].map_tasks[0]
    assert task.attempts[0].state is AttemptState.LOST and task.losses == 1
    assert "did not reach worker w1" in task.last_error["message"]


def test_an_attempt_the_worker_runs_but_the_scheduler_does_not_is_cancelled():
    s, out = make(maps=1, reduces=1, workers=("w1", "w2"))
    (a,) = of(Assign, out)
    stranger = ("old-job", "map-00003", 2)
    out = s.worker_report(a.worker, [key(a), stranger], [], a.seq, 0.5)
    assert out == [Abandon(a.worker, "old-job", "map-00003", 2)]
    # After the job is cancelled, its attempt still running on the worker is cancelled again.
    s.cancel_job("j")
    out = s.worker_report(a.worker, [key(a)], [], a.seq, 0.6)
    assert out == [Abandon(a.worker, "j", a.task.id, a.attempt)]


def test_a_finished_attempt_awaiting_its_ack_is_never_cancelled():
    s, out = make()
    (a,) = of(Assign, out)
    s.attempt_succeeded("w1", "j", a.task.id, a.attempt, {"files": {}}, 0.5)
    assert not of(Abandon, s.worker_report("w1", [], [key(a)], a.seq, 0.6))


def test_a_report_from_an_unregistered_worker_changes_nothing():
    s, out = make()
    assert s.worker_report("w9", [("j", "map-00000", 1)], [], 99, 0.5) == []


def test_a_report_counts_as_hearing_from_the_worker():
    s, out = make()
    (a,) = of(Assign, out)
    s.worker_report("w1", [key(a)], [], a.seq, 2.9)
    s.tick(5.0)
    assert "w1" in s.workers


def test_numbers_keep_growing_when_a_worker_registers_again():
    s, out = make()
    (a,) = of(Assign, out)
    (again,) = of(Assign, s.worker_ready("w1", 1, 1.0))
    assert again.seq > a.seq
    # A report about the earlier registration's number says nothing about the new TASK.
    assert s.worker_report("w1", [], [], a.seq, 1.1) == []


def test_a_paused_coordinator_gives_workers_their_silence_back():
    from mapreduce.scheduler import Scheduler, SchedulerSettings

    scheduler = Scheduler(SchedulerSettings(heartbeat_interval=1.0, liveness=3))
    scheduler.worker_ready("w", 1, now=0.0)
    scheduler.paused(60.0)  # the coordinator was stopped from t=1 to t=61
    assert scheduler.tick(61.0) == [] and "w" in scheduler.workers
    scheduler.tick(64.5)  # silent for 3.5 s after the pause: dead now
    assert "w" not in scheduler.workers


# ---- a worker registering again (a new session) ------------------------------------------------


def test_a_task_that_crossed_the_workers_new_ready_is_not_lost_by_it():
    # The worker's session ended (the coordinator was frozen); it opens a new one by sending its
    # held result, then READY. The result frees its slot and the next TASK leaves at once, before
    # the READY is read: that TASK goes to the new session, which runs it. The READY says its
    # last session heard of TASK numbers up to the first one only: the second is not abandoned.
    s, out = make(maps=3, reduces=0)
    (first,) = of(Assign, out)
    out = s.attempt_succeeded("w1", "j", first.task.id, first.attempt, {"files": {}}, 1.0)
    out += s.task_published("j", first.task.id, 1.0)
    (second,) = of(Assign, out)
    out = s.worker_ready("w1", 1, 1.1, heard=first.seq)
    assert of(Assign, out) == []  # its one slot is the second attempt's
    task = s.jobs["j"].task(second.task.id)
    assert task.losses == 0 and task.attempts[-1].state is AttemptState.RUNNING
    # The new session runs it: nothing to do; it finishes as usual, once.
    assert s.worker_report("w1", [key(second)], [], second.seq, 1.2) == []
    done = s.attempt_succeeded("w1", "j", second.task.id, second.attempt, {"files": {}}, 1.3)
    assert len(of(PublishTask, done)) == 1 and task.losses == 0


def test_a_task_lost_with_the_old_connection_is_sent_again_to_the_new_session():
    s, out = make(maps=3, reduces=0)
    (first,) = of(Assign, out)
    out = s.attempt_succeeded("w1", "j", first.task.id, first.attempt, {"files": {}}, 1.0)
    out += s.task_published("j", first.task.id, 1.0)
    (second,) = of(Assign, out)
    s.worker_ready("w1", 1, 1.1, heard=first.seq)
    # The new session has heard of the second TASK's number (a later message's stamp) but does
    # not run it: it went down the old connection. It is sent again, as the same attempt.
    (again,) = of(Assign, s.worker_report("w1", [], [], second.seq, 1.2))
    assert (again.task.id, again.attempt) == (second.task.id, second.attempt)
    assert s.jobs["j"].task(second.task.id).losses == 0


def test_attempts_the_last_session_heard_of_are_lost_once_when_it_registers_again():
    s, out = make(maps=2, reduces=0)
    (a,) = of(Assign, out)
    out = s.worker_ready("w1", 1, 1.0, heard=a.seq)
    (rerun,) = of(Assign, out)  # the worker abandoned it: it runs again, here
    assert rerun.task.id == a.task.id and rerun.attempt == a.attempt + 1
    task = s.jobs["j"].task(a.task.id)
    assert task.losses == 1
    # Registering again, having heard of the rerun, loses the rerun only: still one per attempt.
    s.worker_ready("w1", 1, 2.0, heard=rerun.seq)
    assert task.losses == 2 and [x.state for x in task.attempts] == [AttemptState.LOST] * 2 + [
        AttemptState.RUNNING
    ]


def test_no_free_slot_withdraws_the_attempt_without_a_loss_and_waits_for_a_report():
    s, out = make(maps=2, reduces=0, workers=("w1",))
    (a,) = of(Assign, out)
    task = s.jobs["j"].task(a.task.id)
    # The worker answers that it has no free slot (it runs something this scheduler lost track
    # of): the attempt never started. It is not a loss, and nothing more goes to that worker...
    out = s.attempt_refused("w1", "j", a.task.id, a.attempt, 0.5)
    assert of(Assign, out) == []
    assert task.losses == 0 and task.failures == 0 and task.state is TaskState.PENDING
    assert task.attempts[0].state is AttemptState.KILLED
    # ...until its report says what it runs: that is cancelled, and the task is handed out again.
    stray = ("j", "map-x", 9)
    out = s.worker_report("w1", [stray], [], a.seq, 1.0)
    assert of(Abandon, out) == [Abandon("w1", "j", "map-x", 9)]
    (again,) = of(Assign, out)
    assert again.worker == "w1" and again.attempt == a.attempt + 1


def test_no_free_slot_sends_the_task_to_another_worker_with_a_free_slot():
    s, out = make(maps=1, reduces=0, workers=("w1",))
    (a,) = of(Assign, out)
    s.worker_ready("w2", 1, 0.2)
    out = s.attempt_refused(a.worker, "j", a.task.id, a.attempt, 0.5)
    (again,) = of(Assign, out)
    assert again.worker == "w2" and s.jobs["j"].task(a.task.id).losses == 0
