"""What the coordinator's journal costs: replaying a 10,000-task job, and a word count through a
coordinator with its journal against the same coordinator without one, in the same invocation.

    python tests/benchmarks/journal.py [--corpus-size 64MB] [--rounds 3] [--data-dir DIR]

Not collected by pytest (no test_ prefix); speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

from run import generate  # noqa: E402

from mapreduce.coordinator import Coordinator, JobSubmission  # noqa: E402
from mapreduce.coordinator import journal as journal_module  # noqa: E402
from mapreduce.coordinator.journal import LocalJournal, encode  # noqa: E402
from mapreduce.prepare import JobOptions, prepare_submission  # noqa: E402
from mapreduce.scheduler import SchedulerSettings  # noqa: E402
from mapreduce.steps import load_steps  # noqa: E402
from mapreduce.worker.pool import LocalPool  # noqa: E402


def replay(tmp: Path, tasks: int = 10_000) -> float:
    """Seconds for a coordinator to start on a journal holding one job of `tasks` map tasks, each
    assigned and nine in ten published (the rest run again)."""
    work = tmp / "replay"
    staging = tmp / ".out.mapreduce-big"
    (staging / "_attempts").mkdir(parents=True)
    (work / "big").mkdir(parents=True)
    submission = JobSubmission(
        "big",
        b"x" * 50_000,
        [{"segments": [[f"/data/in-{i}.txt", 0, 1 << 20]]} for i in range(tasks)],
        [f"in-{i}.txt" for i in range(tasks)],
        8,
        str(tmp / "out"),
    )
    header, code = submission.to_wire()
    records = [
        {
            "type": "submitted",
            "job": "big",
            "at": time.time(),
            "request": None,
            "staging": str(staging),
            "shuffle_dir": str(work / "big"),
            "submission": header,
            "code": journal_module.encode_code(code),
        }
    ]
    for i in range(tasks):
        task = f"map-{i:05d}"
        records.append({"type": "assigned", "job": "big", "task": task, "attempt": 1, "worker": "w"})
        if i % 10:
            files = {str(p): [f"{work}/big/{task}-a1/run-{p}.arrow"] for p in range(8)}
            records.append(
                {
                    "type": "published",
                    "job": "big",
                    "task": task,
                    "attempt": 1,
                    "result": {"files": files, "counters": {"map_input_records": 1000}},
                }
            )
    (work / "coordinator.journal").write_bytes(
        encode(journal_module.header()) + b"".join(encode(r) for r in records)
    )
    size = (work / "coordinator.journal").stat().st_size
    started = time.perf_counter()
    coordinator = Coordinator(
        "tcp://127.0.0.1:*", work_dir=str(work), journal=LocalJournal(str(work))
    )
    seconds = time.perf_counter() - started
    state = coordinator.job_state("big")
    coordinator.close(cancel_running=False)
    assert state["progress"]["maps_done"] == tasks - tasks // 10, state["progress"]
    print(
        f"replay: {tasks} tasks, {len(records)} records, {size / 1e6:.1f} MB of journal: "
        f"{seconds:.3f} s to start (read, replay, compact)"
    )
    return seconds


JOURNAL_SECONDS: list = []


class TimedJournal(LocalJournal):
    """The journal, with the time the coordinator's loop spends in it counted: the cost that
    does not drown in the run-to-run noise of a loaded machine."""

    spent = 0.0
    calls = 0

    def _timed(self, method, *args):
        started = time.perf_counter()
        try:
            return method(self, *args)
        finally:
            self.spent += time.perf_counter() - started
            self.calls += 1

    def append(self, record):
        return self._timed(LocalJournal.append, record)

    def flush(self):
        return self._timed(LocalJournal.flush)

    def sync(self):
        return self._timed(LocalJournal.sync)


def wordcount(corpus: Path, tmp: Path, journaled: bool, run: int) -> float:
    [job] = load_steps(str(ROOT / "jobs" / "wordcount.py"))
    work = tmp / f"work-{run}"
    work.mkdir()
    settings = SchedulerSettings()
    journal = TimedJournal(str(work)) if journaled else None
    # A run's secret, as `mapreduce run` uses: the pool's workers use no keys then.
    coordinator = Coordinator(
        "tcp://127.0.0.1:*",
        work_dir=str(work),
        settings=settings,
        journal=journal,
        secret=secrets.token_bytes(32),
    )
    pool = LocalPool(coordinator.address, 2, secret=coordinator.secret)
    try:
        pool.start()
        submission = prepare_submission(
            job,
            [str(corpus)],
            str(tmp / f"out-{run}"),
            JobOptions(reducers=2),
            workers=2,
        )
        started = time.perf_counter()
        job_id = coordinator.submit(submission)
        while not coordinator.finished(job_id):
            coordinator.poll(0.05)
        seconds = time.perf_counter() - started
        assert coordinator.job(job_id).status == "succeeded"
        if journal is not None:
            JOURNAL_SECONDS.append((journal.spent, journal.calls, seconds))
        return seconds
    finally:
        pool.stop()
        coordinator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "mapreduce-bench")
    parser.add_argument("--corpus-size", default="64MB")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        replay(tmp)
        corpus = generate(args.data_dir, f"corpus-{args.corpus_size}", args.corpus_size)
        times: dict = {False: [], True: []}
        for run in range(args.rounds):
            for journaled in (False, True):  # alternated, so drift hits both alike
                times[journaled].append(wordcount(corpus, tmp, journaled, len(times[0]) * 2 + run * 2 + journaled))
        plain, journaled = statistics.median(times[False]), statistics.median(times[True])
        print(
            f"word count, {args.corpus_size}, 2 workers, median of {args.rounds}: without journal "
            f"{plain:.2f} s, with journal {journaled:.2f} s: overhead {journaled / plain - 1:+.1%}"
        )
        spent = statistics.median(s / total for s, _, total in JOURNAL_SECONDS)
        calls = statistics.median(c for _, c, _ in JOURNAL_SECONDS)
        print(
            f"time the coordinator spent in the journal (append, flush, fsync): median "
            f"{spent:.2%} of the job's time, {calls:.0f} calls per job"
        )


if __name__ == "__main__":
    main()
