"""The committer's thread: steps asked for are handed over in one go, carried out in order, and
their outcomes come back together with one wake-up of the loop."""

from __future__ import annotations

import select
import time
from types import SimpleNamespace

from mapreduce.coordinator.committer import CleanedUp, Committer


def job(tmp_path, name: str) -> SimpleNamespace:
    """What a clean-up reads of a job record: its id, staging and shuffle directories (real)."""
    staging, shuffle = tmp_path / name / "staging", tmp_path / name / "shuffle"
    staging.mkdir(parents=True)
    shuffle.mkdir()
    (staging / "part-00000").write_text("x\n")
    return SimpleNamespace(id=name, staging=str(staging), shuffle_dir=str(shuffle))


def test_steps_wait_for_hand_over_then_run_in_order_with_one_wake_up(tmp_path):
    committer = Committer()
    try:
        records = [job(tmp_path, f"job-{i}") for i in range(3)]
        for record in records:
            committer.clean_up(record, keep_output=False)
        time.sleep(0.2)  # the thread would have run a step handed to it by now
        assert all((tmp_path / r.id / "shuffle").exists() for r in records)
        assert committer.outcomes() == []
        committer.hand_over()
        committer.drain()
        readable, _, _ = select.select([committer.fileno()], [], [], 5)
        assert readable == [committer.fileno()]
        assert committer.outcomes() == [CleanedUp(r.id) for r in records]  # in asked order
        assert not any((tmp_path / r.id / "shuffle").exists() for r in records)
        assert not any((tmp_path / r.id / "staging").exists() for r in records)
        # One batch, one byte on the wake-up pipe: outcomes() read it, nothing is left.
        readable, _, _ = select.select([committer.fileno()], [], [], 0)
        assert readable == []
    finally:
        committer.close()


def test_drain_and_close_hand_over_what_was_asked(tmp_path):
    committer = Committer()
    first, second = job(tmp_path, "first"), job(tmp_path, "second")
    try:
        committer.clean_up(first, keep_output=True)
        committer.drain()  # hands over first
        assert committer.outcomes() == [CleanedUp("first")]
        assert (tmp_path / "first" / "staging" / "part-00000").exists()  # output kept
        assert not (tmp_path / "first" / "shuffle").exists()
        committer.clean_up(second, keep_output=False)
    finally:
        committer.close()  # carries out what was asked, then stops the thread
    assert not (tmp_path / "second" / "staging").exists()


def test_a_step_that_raises_does_not_stop_the_others_of_its_batch(tmp_path):
    committer = Committer()
    broken = SimpleNamespace(id="broken", staging=None)  # no shuffle_dir: its clean-up raises
    after = job(tmp_path, "after")
    try:
        committer.clean_up(broken, keep_output=True)
        committer.clean_up(after, keep_output=False)
        committer.drain()
        assert committer.outcomes() == [CleanedUp("after")]  # the broken one logged, no outcome
        assert not (tmp_path / "after" / "staging").exists()
    finally:
        committer.close()
