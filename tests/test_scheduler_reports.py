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
