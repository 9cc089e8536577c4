"""The scheduler: workers and their slots, and the events of every job routed to its engine.

The coordinator's socket loop feeds it what happened (a worker registered, reported or went
silent, an attempt finished or failed, an output was published, time passed) and carries out
what it returns (instructions.py: send this task to that worker, abandon that attempt, publish a
task's output, commit or fail a job). It owns what spans jobs: worker registrations and liveness,
their slots, the TASKs sent to each and their numbers, and which pending task or backup a free
slot takes (jobs in submission order). A job's own decisions are its `JobEngine`'s (engine.py),
on its `JobState` (jobstate.py). Time is always passed in as `now`, so every timeout decision can
be tested in microseconds without sockets or sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .. import defaults
from ..tasks import AttemptState, JobPhase, Task
from .engine import JobEngine
from .instructions import Abandon, Assign
from .jobstate import JobState, new_job
from .settings import SchedulerSettings


@dataclass(slots=True)
class WorkerState:
    id: str
    capacity: int
    last_seen: float
    info: dict = field(default_factory=dict)
    running: set = field(default_factory=set)  # {(job, task id, attempt)}
    tasks_done: int = 0
    seqs: dict = field(default_factory=dict)  # (job, task id, attempt) -> its TASK's number
    resends: dict = field(default_factory=dict)  # (job, task id, attempt) -> TASKs lost so far
    # It answered a TASK with "no free slot": it runs something this scheduler does not know of,
    # so it gets nothing more until its next report says what (`worker_report`).
    full: bool = False

    @property
    def free_slots(self) -> int:
        return 0 if self.full else self.capacity - len(self.running)


class Scheduler:
    def __init__(self, settings: SchedulerSettings | None = None):
        self.settings = settings or SchedulerSettings()
        self.engine = JobEngine(self.settings)
        self.jobs: dict[str, JobState] = {}  # insertion order is submission order (FIFO)
        self.workers: dict[str, WorkerState] = {}
        # TASKs numbered per worker id, kept across its registrations: a message of an earlier
        # registration still on its way never carries a number a new TASK has.
        self.task_seqs: dict[str, int] = {}
        self._free: dict[str, None] = {}  # the ids of workers with a free slot, as a set

    # ---- events ---------------------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        map_wheres: list[str],
        num_reducers: int,
        max_attempts: int,
        max_losses: int = defaults.MAX_LOST_ATTEMPTS,
        now: float = 0.0,
        map_splits: list | None = None,
        cut: Callable[[dict], list] | None = None,
        skip_bad_records: bool = False,
        max_skipped: int = defaults.MAX_SKIPPED_RECORDS,
    ) -> list:
        """A job's tasks: one map task per split (`map_wheres` describe them, `map_splits` are
        what their attempts are sent), `num_reducers` reduce tasks. With `cut`, a map task that
        loses attempts to dying processes is re-planned into the pieces `cut(its split)` gives."""
        job = self.jobs[job_id] = new_job(
            job_id,
            map_wheres,
            num_reducers,
            max_attempts,
            max_losses,
            map_splits,
            cut,
            skip_bad_records,
            max_skipped,
        )
        if not job.map_tasks:
            return self.engine.finish_phase(job)
        return self._dispatch(now)

    def restore_job(
        self,
        job_id: str,
        map_wheres: list[str],
        num_reducers: int,
        max_attempts: int,
        max_losses: int,
        attempts: dict[str, int],
        published: dict[str, dict],
        now: float,
        map_splits: list | None = None,
        cut: Callable[[dict], list] | None = None,
        replanned: list | tuple = (),
        skip_bad_records: bool = False,
        max_skipped: int = defaults.MAX_SKIPPED_RECORDS,
    ) -> list:
        """A job replayed from the coordinator's journal: `attempts` started per task id before
        the restart (none of them runs now), `published` the result of each task whose output
        was in place. It continues from there: published tasks never run again. `replanned`:
        the map tasks re-planned before the restart, in the order they were; `cut` (as for
        add_job) cuts them again into the same pieces, which the other records may be about."""
        job = new_job(
            job_id,
            map_wheres,
            num_reducers,
            max_attempts,
            max_losses,
            map_splits,
            cut,
            skip_bad_records,
            max_skipped,
        )
        out = self.engine.restore(job, attempts, published, replanned, now)
        self.jobs[job_id] = job
        return out + self._dispatch(now)

    def worker_ready(
        self,
        worker_id: str,
        capacity: int,
        now: float,
        info: dict | None = None,
        heard: int | None = None,
    ) -> list:
        """A worker registered, or registered again after reconnecting. It abandoned what its
        earlier session ran: the attempts whose TASK number that session had heard of (`heard`,
        the highest; None: all of them) are lost, once. An attempt assigned later (its TASK
        crossed the new READY: the worker sends its held results first, and a result frees a
        slot) may be on its way to the new session, or lost with the old connection: it stays
        assigned, and the new session's reports decide (`worker_report`: it runs, or it is sent
        again), so one reconnect never counts an attempt running on the worker as lost."""
        old = self.workers.get(worker_id)
        worker = WorkerState(worker_id, max(1, capacity), now, info or {})
        out: list = []
        if old is not None:
            if heard is not None:
                for key in [k for k in old.running if old.seqs.get(k, 0) > heard]:
                    old.running.discard(key)
                    worker.running.add(key)
                    worker.seqs[key] = old.seqs[key]
                    worker.resends[key] = old.resends.get(key, 0)
            out = self.worker_gone(worker_id, now, "it registered again", dispatch=False)
        self.workers[worker_id] = worker
        self._slots_changed(worker)
        return out + self._dispatch(now)

    def heard_from(self, worker_id: str, now: float) -> None:
        worker = self.workers.get(worker_id)
        if worker:
            worker.last_seen = now

    def worker_report(self, worker_id: str, running, finished, known: int, now: float) -> list:
        """A worker's heartbeat listed the attempts it runs (`running`) and those whose result it
        holds until acknowledged (`finished`), each (job, task id, attempt), and the highest TASK
        number it has heard of (`known`). Reconcile with what it was assigned:

        - an attempt assigned to it that it does not list, whose TASK number it has heard of (so
          the TASK is not still on its way), was lost: it is assigned again (same attempt, new
          number); after `task_resends` losses in a row it is counted lost and runs elsewhere;
        - an attempt it lists as running that does not run there as far as the scheduler knows
          (abandoned, its job ended or forgotten, or never assigned) is abandoned on it.
        An unregistered worker's report changes nothing (the coordinator makes it register)."""
        worker = self.workers.get(worker_id)
        if worker is None:
            return []
        worker.last_seen = now
        if worker.full:  # it says what it runs: what it does not want is cancelled below
            worker.full = False
            self._slots_changed(worker)
        running = {tuple(key) for key in running}
        listed = running | {tuple(key) for key in finished}
        out: list = []
        missing = worker.running - listed
        for key in sorted(missing) if missing else ():
            if worker.seqs.get(key, known + 1) > known:
                continue  # its TASK may still be on its way
            job_id, task_id, number = key
            lost = worker.resends.get(key, 0) + 1
            found = self._live_task(job_id, task_id)
            if lost > self.settings.task_resends or found is None:
                self._free_slot(worker_id, job_id, task_id, number)
                error = {
                    "type": "TaskNotDelivered",
                    "traceback": "",
                    "message": f"its TASK message did not reach worker {worker_id} "
                    f"({lost} times): the connection to that worker lost it",
                }
                out += self._attempt_ended(job_id, task_id, number, AttemptState.LOST, error)
                continue
            worker.resends[key] = lost
            worker.seqs[key] = self._next_seq(worker_id)
            out.append(Assign(worker_id, job_id, found[1], number, worker.seqs[key]))
        unwanted = running - worker.running
        for job_id, task_id, number in sorted(unwanted, key=str) if unwanted else ():
            out.append(Abandon(worker_id, job_id, task_id, number))
        return out + self._dispatch(now)

    def worker_gone(
        self, worker_id: str, now: float, why: str = "it stopped responding", dispatch=True
    ) -> list:
        worker = self.workers.pop(worker_id, None)
        if worker is None:
            return []
        self._free.pop(worker_id, None)
        out = []
        for job_id, task_id, number in sorted(worker.running):
            error = {
                "type": "WorkerLost",
                "message": f"worker {worker_id} was lost: {why}",
                "traceback": "",
            }
            out += self._attempt_ended(job_id, task_id, number, AttemptState.LOST, error)
        return out + self._dispatch(now) if dispatch else out

    def attempt_succeeded(
        self, worker_id: str, job_id: str, task_id: str, number: int, result: dict, now: float
    ) -> list:
        self._free_slot(worker_id, job_id, task_id, number, done=True)
        found = self._live_task(job_id, task_id)
        if found is None:
            return self._dispatch(now)  # late news: the job ended or was forgotten
        job, task = found
        out = self.engine.attempt_succeeded(job, task, number, result, now)
        if out is None:  # a late or duplicate report, discarded
            return self._dispatch(now)
        self._released(out)
        # While the phase has tasks pending, the freed slots take them at once (the TASK follows
        # the ACK to the worker, often in the same write). Otherwise they are filled once the
        # publish is done (task_published, publish_failed): this job's next phase may be the
        # next thing to run. (A job that failed on it: at once.)
        if not job.active or job.next_pending() is not None:
            out += self._dispatch(now)
        return out

    def task_published(self, job_id: str, task_id: str, now: float) -> list:
        """The accepted attempt's output is in place; the phase ends when every task's is."""
        found = self._live_task(job_id, task_id)
        out = [] if found is None else self.engine.task_published(*found)
        return out + self._dispatch(now)

    def attempt_failed(
        self,
        worker_id: str,
        job_id: str,
        task_id: str,
        number: int,
        error: dict,
        lost: bool,
        now: float,
    ) -> list:
        self._free_slot(worker_id, job_id, task_id, number)
        state = AttemptState.LOST if lost else AttemptState.FAILED
        return self._attempt_ended(job_id, task_id, number, state, error) + self._dispatch(now)

    def attempt_refused(
        self, worker_id: str, job_id: str, task_id: str, number: int, now: float
    ) -> list:
        """The worker had no free slot for this attempt: it never started there, so it is
        withdrawn (KILLED, counted neither failed nor lost) and the task waits or goes elsewhere.
        The worker runs something this scheduler does not know of (its report will say what:
        an attempt nobody wants is cancelled), so it gets no attempt before that report."""
        worker = self.workers.get(worker_id)
        self._free_slot(worker_id, job_id, task_id, number)
        if worker is not None:
            worker.full = True
            self._slots_changed(worker)
        found = self._live_task(job_id, task_id)
        if found is not None:
            self.engine.attempt_withdrawn(*found, number)
        return self._dispatch(now)

    def map_output_lost(
        self,
        worker_id: str,
        job_id: str,
        task_id: str,
        number: int,
        map_task_id: str,
        error: dict,
        now: float,
    ) -> list:
        """A reduce attempt could not read a committed map output: the reduce attempt is lost (not
        the user's fault) and the map runs again; reduces wait until it has (MapReduce paper 3.3)."""
        self._free_slot(worker_id, job_id, task_id, number)
        out = self._attempt_ended(job_id, task_id, number, AttemptState.LOST, error)
        job = self.jobs.get(job_id)
        if job is not None:
            self.engine.map_output_lost(job, map_task_id, error)
        return out + self._dispatch(now)

    def publish_failed(self, job_id: str, task_id: str, error: dict, now: float) -> list:
        """The accepted attempt's output could not be put in place: run the task again (a failed
        publish counts as a failed attempt, so one that keeps failing fails the job)."""
        found = self._live_task(job_id, task_id)
        out = [] if found is None else self._released(self.engine.publish_failed(*found, error))
        return out + self._dispatch(now)

    def fail_job(self, job_id: str) -> list:
        """The job cannot go on for a reason outside its tasks (its commit failed, the coordinator
        hit an error carrying out one of its instructions): stop its attempts."""
        job = self.jobs.get(job_id)
        if not job or job.ended:
            return []
        return self._released(self.engine.end(job, JobPhase.FAILED))

    def replan_task(self, job_id: str, task_id: str, now: float) -> list:
        """Cut a map task into the pieces its job's `cut` gives and put them in its place (what
        a lost attempt does once the task has lost `replan_after_losses`; a coordinator replaying
        its journal calls it directly). Its running attempts are abandoned: the pieces redo
        their work. [] when the task is not running or pending, or cannot be cut."""
        found = self._live_task(job_id, task_id)
        if found is None:
            return []
        out = self._released(self.engine.replan(*found))
        return out + self._dispatch(now) if out else []

    def job_committed(self, job_id: str) -> None:
        self.jobs[job_id].move_to(JobPhase.DONE)

    def cancel_job(self, job_id: str) -> list:
        """Stop a job's attempts. Nothing happens to a job that ended or is committing: a commit,
        once started, ends committed or failed (see `cancellable`)."""
        job = self.jobs.get(job_id)
        if not job or not job.active:
            return []
        return self._released(self.engine.end(job, JobPhase.CANCELLED))

    def cancellable(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and job.active

    def forget_job(self, job_id: str) -> None:
        """Drop a finished job's task table (late reports about it are then simply ignored)."""
        job = self.jobs.get(job_id)
        if job is not None and job.ended:
            del self.jobs[job_id]

    def paused(self, seconds: float) -> None:
        """The coordinator itself was stopped for `seconds` (SIGSTOP, a suspended machine): nobody
        was heard because nobody listened. Workers' silence is counted from now, so they are not
        declared dead before what they sent meanwhile has been read."""
        for worker in self.workers.values():
            worker.last_seen += seconds

    def tick(self, now: float) -> list:
        """Time passed: expire silent workers, start backups for stragglers."""
        out = []
        for worker in list(self.workers.values()):
            if now - worker.last_seen > self.settings.expiry:
                out += self.worker_gone(
                    worker.id, now, f"silent for more than {self.settings.expiry:g} s"
                )
        return out + self._dispatch(now)

    # ---- queries --------------------------------------------------------------------------------

    def job_finished(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        return job is None or job.ended

    # ---- internals ------------------------------------------------------------------------------

    def _free_slot(self, worker_id, job_id, task_id, number, done=False) -> None:
        worker = self.workers.get(worker_id)
        if worker and (job_id, task_id, number) in worker.running:
            worker.running.discard((job_id, task_id, number))
            worker.seqs.pop((job_id, task_id, number), None)
            worker.resends.pop((job_id, task_id, number), None)
            worker.tasks_done += done
            self._slots_changed(worker)

    def _slots_changed(self, worker: WorkerState) -> None:
        if worker.free_slots > 0:
            self._free[worker.id] = None
        else:
            self._free.pop(worker.id, None)

    def _released(self, out: list) -> list:
        """The attempts an engine's instructions abandon no longer hold their workers' slots."""
        for instruction in out:
            if type(instruction) is Abandon:
                self._free_slot(
                    instruction.worker, instruction.job, instruction.task, instruction.attempt
                )
        return out

    def _next_seq(self, worker_id: str) -> int:
        self.task_seqs[worker_id] = self.task_seqs.get(worker_id, 0) + 1
        return self.task_seqs[worker_id]

    def _live_task(self, job_id: str, task_id: str) -> tuple[JobState, Task] | None:
        """The job and task a report is about, while the job is active; None for late news (the
        job ended or was forgotten) and for a task id the job does not have."""
        job = self.jobs.get(job_id)
        if job is None or not job.active:
            return None
        task = job.task(task_id)
        return None if task is None else (job, task)

    def _attempt_ended(self, job_id, task_id, number, state, error) -> list:
        found = self._live_task(job_id, task_id)
        if found is None:
            return []  # late news about a job that ended or was forgotten
        return self._released(self.engine.attempt_ended(*found, number, state, error))

    def _dispatch(self, now: float) -> list:
        """Fill free worker slots: pending tasks first (jobs in submission order), then backups.
        Costs nothing much when every slot is taken or nothing is left to hand out."""
        if not self._free:
            return []
        # Computed once, when no task is pending any more (nothing else changes meanwhile).
        backups = None if self._next_pending() is not None else self._backups(now)
        if backups is not None and not backups:
            return []
        out: list = []
        workers = sorted(
            (self.workers[w] for w in self._free), key=lambda w: (len(w.running), w.id)
        )
        for worker in workers:
            while worker.free_slots > 0:
                found = self._next_pending()
                backup = found is None
                if found is None:
                    if backups is None:
                        backups = self._backups(now)
                    if not backups:
                        return out  # nothing left for any worker
                    found = _take_backup(backups, worker.id)
                    if found is None:
                        break  # the candidates run on this worker
                job, task = found
                attempt = job.start_attempt(task, worker.id, now, backup)
                key = (job.id, task.id, attempt.number)
                worker.running.add(key)
                worker.seqs[key] = self._next_seq(worker.id)
                out.append(Assign(worker.id, job.id, task, attempt.number, worker.seqs[key]))
                self._slots_changed(worker)
        return out

    def _next_pending(self) -> tuple[JobState, Task] | None:
        for job in self.jobs.values():
            if job.active:
                task = job.next_pending()
                if task is not None:
                    return job, task
        return None

    def _backups(self, now: float) -> list:
        """[(job, task)] for every straggler, jobs in submission order, each job's longest
        running first: the order in which idle workers take them."""
        return [
            (job, task)
            for job in self.jobs.values()
            if job.active
            for task in self.engine.stragglers(job, now)
        ]


def _take_backup(backups: list, worker_id: str) -> tuple[JobState, Task] | None:
    """The first straggler whose attempt runs on another worker, taken off the list."""
    for i, (job, task) in enumerate(backups):
        if task.running()[0].worker != worker_id:
            del backups[i]
            return job, task
    return None
