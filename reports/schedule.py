"""``finops schedule``: run the configured jobs when their cron expressions fire.

Each job's last handled fire time is kept in ``state.db`` (table ``schedule_jobs``). On
every tick the scheduler finds, per job, the latest fire time at or before now; if it is
later than the one last handled, the job runs once for it. So after downtime that
spanned several fire times, the job runs once (for the latest), not once per miss. A job
seen for the first time starts from its next fire time, unless the latest one is less
than ``FIRST_RUN_GRACE`` old (so a scheduler started by cron right at the hour runs it).

Time comes from a :class:`Clock`, so tests drive the scheduler with a fake one.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from finops.errors import FinopsError
from finops.settings import Settings
from finops.state import State, now_utc
from finops.warehouse import Warehouse
from reports.build import IsoWeek
from reports.config import Job, ReportsConfig

log = logging.getLogger("finops.schedule")
FIRST_RUN_GRACE = dt.timedelta(minutes=15)
MAX_SLEEP_SECONDS = 300.0  # wake at least this often, so a changed wall clock is noticed
SCHEMA = """
CREATE TABLE IF NOT EXISTS schedule_jobs (
    job TEXT PRIMARY KEY,
    last_fire TEXT NOT NULL,
    last_status TEXT NOT NULL,
    last_started TEXT,
    last_finished TEXT,
    message TEXT,
    updated_at TEXT NOT NULL
);
"""


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def wait(self, seconds: float, stop: threading.Event) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)


@dataclass
class StepResult:
    step: str
    ok: bool
    message: str


@dataclass
class JobRun:
    job: str
    fire: dt.datetime
    catch_up: bool
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def summary(self) -> str:
        return "; ".join(f"{s.step}: {'ok' if s.ok else 'FAILED'} ({s.message})" for s in self.steps)


JobRunner = Callable[[Job, dt.datetime], JobRun]


class JobStore:
    def __init__(self, state: State) -> None:
        self.state = state
        state.db.executescript(SCHEMA)

    def last_fire(self, job: str) -> dt.datetime | None:
        row = self.state.db.execute("SELECT last_fire FROM schedule_jobs WHERE job=?",
                                    (job,)).fetchone()
        return dt.datetime.fromisoformat(row["last_fire"]) if row else None

    def record(self, job: str, fire: dt.datetime, status: str, *, started: str | None = None,
               message: str | None = None) -> None:
        with self.state.tx() as db:
            db.execute(
                "INSERT INTO schedule_jobs (job, last_fire, last_status, last_started,"
                " last_finished, message, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job) DO UPDATE SET last_fire=excluded.last_fire,"
                " last_status=excluded.last_status, last_started=excluded.last_started,"
                " last_finished=excluded.last_finished, message=excluded.message,"
                " updated_at=excluded.updated_at",
                (job, fire.astimezone(dt.UTC).isoformat(), status, started,
                 now_utc() if started else None, (message or "")[:2000], now_utc()),
            )

    def status(self) -> list[dict[str, str | None]]:
        return [dict(r) for r in self.state.db.execute(
            "SELECT * FROM schedule_jobs ORDER BY job").fetchall()]


class Scheduler:
    def __init__(self, jobs: Sequence[Job], state: State, runner: JobRunner,
                 clock: Clock | None = None) -> None:
        self.jobs = list(jobs)
        self.store = JobStore(state)
        self.runner = runner
        self.clock = clock or SystemClock()

    def _run(self, job: Job, fire: dt.datetime, *, catch_up: bool) -> JobRun:
        started = now_utc()
        local = fire.astimezone(job.zone)
        log.info("job %s: starting for %s%s", job.name, f"{local:%Y-%m-%d %H:%M %Z}",
                 " (catching up a run missed while the scheduler was down)" if catch_up else "")
        result = self.runner(job, fire)
        result.catch_up = catch_up
        self.store.record(job.name, fire, "succeeded" if result.ok else "failed",
                          started=started, message=result.summary)
        (log.info if result.ok else log.error)(
            "job %s: %s: %s", job.name, "succeeded" if result.ok else "FAILED", result.summary)
        return result

    def tick(self) -> list[JobRun]:
        """Run every job whose latest fire time has not been handled yet, once."""
        now = self.clock.now()
        runs = []
        for job in self.jobs:
            due = job.schedule.previous(now, job.zone)
            last = self.store.last_fire(job.name)
            if due is None or (last is not None and due <= last):
                continue
            late = now - due > FIRST_RUN_GRACE
            if last is None and late:
                self.store.record(job.name, due, "registered")
                nxt = job.schedule.next_after(now, job.zone)
                log.info("job %s: registered; first run at %s", job.name,
                         f"{nxt.astimezone(job.zone):%Y-%m-%d %H:%M %Z}" if nxt else "never")
                continue
            if late and not job.catch_up:
                self.store.record(job.name, due, "skipped",
                                  message="missed while the scheduler was down; catch_up = false")
                log.warning("job %s: skipped the run due at %s (catch_up = false)", job.name,
                            f"{due.astimezone(job.zone):%Y-%m-%d %H:%M %Z}")
                continue
            runs.append(self._run(job, due, catch_up=late))
        return runs

    def run_now(self, names: Sequence[str] = ()) -> list[JobRun]:
        """Run the named jobs (all when none named) immediately, whatever their schedule."""
        now = self.clock.now()
        return [self._run(job, now, catch_up=False) for job in self.jobs
                if not names or job.name in names]

    def next_wake(self) -> dt.datetime | None:
        now = self.clock.now()
        times = [t for job in self.jobs if (t := job.schedule.next_after(now, job.zone))]
        return min(times) if times else None

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set, sleeping until the next fire time in between."""
        for job in self.jobs:
            nxt = job.schedule.next_after(self.clock.now(), job.zone)
            log.info("job %s: cron %r in %s, next at %s", job.name, job.cron, job.timezone,
                     f"{nxt.astimezone(job.zone):%Y-%m-%d %H:%M %Z}" if nxt else "never")
        while not stop.is_set():
            self.tick()
            wake = self.next_wake()
            now = self.clock.now()
            seconds = MAX_SLEEP_SECONDS if wake is None else (wake - now).total_seconds()
            self.clock.wait(min(max(seconds, 1.0), MAX_SLEEP_SECONDS), stop)
        log.info("scheduler stopped")


# ---- running a job's steps -----------------------------------------------------------------
def _argv(command: Sequence[str]) -> list[str]:
    if command[0] == "finops":
        return [sys.executable, "-m", "finops.cli", *command[1:]]
    return list(command)


def _collect(job: Job, home: Path) -> StepResult:
    failures, done = [], 0
    env = {**os.environ, "FINOPS_HOME": str(home)}
    for command in job.collect:
        shown = " ".join(command)
        try:
            proc = subprocess.run(_argv(command), capture_output=True, text=True, env=env,
                                  timeout=job.timeout_minutes * 60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            failures.append(f"{shown}: {exc}")
            continue
        for line in (proc.stderr or "").strip().splitlines()[-5:]:
            log.info("  %s", line)
        if proc.returncode != 0:
            failures.append(f"{shown}: exit {proc.returncode}")
        else:
            done += 1
    if failures:
        return StepResult("collect", False, "; ".join(failures))
    return StepResult("collect", True, f"{done} command(s)")


def make_runner(wh: Warehouse, state: State, settings: Settings, config: ReportsConfig
                ) -> JobRunner:
    """The real runner: collect commands, the pipeline stages, the weekly report."""

    def run(job: Job, fire: dt.datetime) -> JobRun:
        from finops.pipeline import run_stages
        from reports.weekly import run_weekly

        result = JobRun(job.name, fire, catch_up=False)
        run_id = state.start_run("schedule", job.name, [fire.isoformat()])
        for step in job.steps:
            try:
                if step == "collect":
                    result.steps.append(_collect(job, wh.home))
                elif step == "stages":
                    stages = run_stages(wh, state)
                    result.steps.append(StepResult(
                        "stages", all(o.ok for o in stages),
                        ", ".join(f"{o.stage} {'ok' if o.ok else 'failed'}" for o in stages)))
                else:
                    week = IsoWeek.last_complete(fire.astimezone(job.zone).date())
                    outcomes = run_weekly(wh, state, settings, config, week=week, send=job.send,
                                          out_dir=job.out_dir)
                    failed = [o.email for o in outcomes if o.failed]
                    counts = {s: sum(o.status == s for o in outcomes) for s in
                              ("sent", "skipped", "written", "failed")}
                    result.steps.append(StepResult(
                        "report", not failed,
                        f"{week.label}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)))
            except Exception as exc:
                log.exception("job %s: step %s raised", job.name, step)
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                result.steps.append(StepResult(step, False, f"{type(exc).__name__}: {first}"))
        state.finish_run(run_id, status="succeeded" if result.ok else "failed",
                         message=result.summary[:2000])
        return result

    return run


@contextmanager
def single_instance(home: Path) -> Iterator[None]:
    """Hold ``schedule.lock`` in the warehouse, so two schedulers never run the same jobs."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "schedule.lock"
    with path.open("a+", encoding="ascii") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise FinopsError(
                f"another `finops schedule` holds {path} (pid {fh.read().strip() or '?'})",
                hint="Stop it first, or give this one another --home.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
