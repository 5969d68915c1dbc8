"""Cron parsing and the scheduler, driven by a fake clock: no test waits for real time."""

from __future__ import annotations

import datetime as dt
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from finops.settings import load_settings
from finops.state import State, open_state
from finops.warehouse import Warehouse
from reports.config import Job, ReportsConfig, load_config
from reports.cron import Cron, CronError
from reports.schedule import JobRun, Scheduler, StepResult, make_runner
from tests.core.cli import finops

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0) -> dt.datetime:
    """A wall-clock time in Berlin, as the UTC instant the scheduler works with."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=BERLIN).astimezone(dt.UTC)


class FakeClock:
    def __init__(self, start: dt.datetime, *, until: dt.datetime | None = None) -> None:
        self.current = start
        self.until = until
        self.waits: list[float] = []

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, **kw: float) -> None:
        self.current += dt.timedelta(**kw)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        self.waits.append(seconds)
        self.current += dt.timedelta(seconds=seconds)
        if self.until is not None and self.current >= self.until:
            stop.set()


class Recorder:
    def __init__(self) -> None:
        self.fires: list[tuple[str, dt.datetime]] = []

    def __call__(self, job: Job, fire: dt.datetime) -> JobRun:
        self.fires.append((job.name, fire))
        return JobRun(job.name, fire, catch_up=False, steps=[StepResult("report", True, "ok")])


WEEKLY = Job(name="weekly", cron="0 8 * * MON", timezone="Europe/Berlin", steps=("report",))


# ---- cron ---------------------------------------------------------------------------
def test_cron_previous_and_next_in_a_time_zone() -> None:
    cron = Cron.parse("0 8 * * MON")
    # Monday 4 May 2026, 08:00 in Berlin is 06:00 UTC (summer time).
    assert cron.previous(berlin(2026, 5, 6, 12, 0), BERLIN) == dt.datetime(2026, 5, 4, 6, 0,
                                                                           tzinfo=dt.UTC)
    assert cron.next_after(berlin(2026, 5, 4, 8, 0), BERLIN) == berlin(2026, 5, 11, 8, 0)
    assert cron.previous(berlin(2026, 5, 4, 8, 0), BERLIN) == berlin(2026, 5, 4, 8, 0)
    # In winter the same wall time is 07:00 UTC.
    assert cron.next_after(berlin(2026, 12, 1, 0, 0), BERLIN) == dt.datetime(2026, 12, 7, 7, 0,
                                                                             tzinfo=dt.UTC)


def test_cron_fields_and_dst() -> None:
    assert Cron.parse("*/15 9-17 * * 1-5").minutes == frozenset({0, 15, 30, 45})
    assert Cron.parse("0 0 * * 7").weekdays == frozenset({0})
    assert Cron.parse("@daily").hours == frozenset({0})
    # Day-of-month OR day-of-week when both are restricted (Vixie cron).
    either = Cron.parse("0 0 1 * FRI")
    assert either.matches_date(dt.date(2026, 5, 1)) and either.matches_date(dt.date(2026, 5, 8))
    # 02:30 does not exist on 29 March 2026 in Berlin: the job fires once, an hour later.
    spring = Cron.parse("30 2 * * *")
    fire = spring.next_after(berlin(2026, 3, 29, 0, 0), BERLIN)
    assert fire == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    # 02:30 happens twice on 25 October 2026: the job fires at the first only.
    autumn = spring.next_after(berlin(2026, 10, 25, 0, 0), BERLIN)
    assert autumn == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    assert spring.next_after(autumn, BERLIN) == berlin(2026, 10, 26, 2, 30)
    for bad in ("0 8 * *", "61 * * * *", "0 8 * * FUNDAY", "0 0 31 2 *", "5-1 * * * *"):
        with pytest.raises(CronError):
            Cron.parse(bad)


# ---- the scheduler ----------------------------------------------------------------------
def test_catch_up_runs_once_after_downtime(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    clock = FakeClock(berlin(2026, 5, 4, 7, 0))
    runner = Recorder()
    try:
        scheduler = Scheduler([WEEKLY], state, runner, clock)
        assert scheduler.tick() == []  # first sight, last fire a week ago: registered only
        clock.advance(hours=1, seconds=30)
        assert [r.fire for r in scheduler.tick()] == [berlin(2026, 5, 4, 8, 0)]
        clock.advance(minutes=5)
        assert scheduler.tick() == []  # handled already
    finally:
        state.close()

    # Down for three Mondays (11, 18 and 25 May); restarted on Wednesday 27 May.
    state = open_state(tmp_path)
    clock.current = berlin(2026, 5, 27, 10, 0)
    try:
        scheduler = Scheduler([WEEKLY], state, runner, clock)
        runs = scheduler.tick()
        assert [(r.fire, r.catch_up) for r in runs] == [(berlin(2026, 5, 25, 8, 0), True)]
        assert scheduler.tick() == []
        clock.current = berlin(2026, 6, 1, 8, 0, 10)
        assert [r.fire for r in scheduler.tick()] == [berlin(2026, 6, 1, 8, 0)]
    finally:
        state.close()
    assert len(runner.fires) == 3


def test_no_catch_up_when_disabled(tmp_path: Path) -> None:
    job = WEEKLY.model_copy(update={"catch_up": False})
    state = open_state(tmp_path)
    clock = FakeClock(berlin(2026, 5, 4, 8, 1))
    runner = Recorder()
    try:
        scheduler = Scheduler([job], state, runner, clock)
        assert len(scheduler.tick()) == 1  # on time (within the grace of a first run)
        clock.current = berlin(2026, 5, 20, 9, 0)
        assert scheduler.tick() == []
        assert [r["last_status"] for r in scheduler.store.status()] == ["skipped"]
    finally:
        state.close()
    assert len(runner.fires) == 1


def test_run_loop_sleeps_until_the_fire_time(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    clock = FakeClock(berlin(2026, 5, 4, 7, 58), until=berlin(2026, 5, 4, 11, 0))
    runner = Recorder()
    every_hour = Job(name="hourly", cron="30 * * * *", timezone="UTC", steps=("report",))
    try:
        Scheduler([WEEKLY, every_hour], state, runner, clock).run(threading.Event())
    finally:
        state.close()
    assert runner.fires[0] == ("weekly", berlin(2026, 5, 4, 8, 0))  # first sight within grace
    assert [f for name, f in runner.fires if name == "hourly"] == [
        dt.datetime(2026, 5, 4, h, 30, tzinfo=dt.UTC) for h in (6, 7, 8)]
    assert max(clock.waits) <= 300


def test_real_runner_steps(home: Path, config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = Job(name="nightly", cron="0 6 * * *", steps=("collect", "stages", "report"),
              collect=((sys.executable, "-c", "print('collected')"),
                       (sys.executable, "-c", "import sys; sys.exit(3)")),
              send=False, out_dir=out)
    config = load_config(config_file).model_copy(update={"jobs": (job,)})
    assert isinstance(config, ReportsConfig)
    state = open_state(home)
    try:
        runner = make_runner(Warehouse(home), state, load_settings(home=home), config)
        fire = dt.datetime(2026, 5, 11, 6, 0, tzinfo=dt.UTC)
        run = runner(job, fire)
        steps = {s.step: s for s in run.steps}
        assert not steps["collect"].ok and "exit 3" in steps["collect"].message
        assert steps["report"].ok and "2026-W19: 3 written" in steps["report"].message
        assert "stages" in steps  # ran despite the failed collect; ok depends on the models
        assert not run.ok
        assert sorted(p.name for p in (out / "2026-W19").glob("*.eml")) == [
            "acme-owner_example.com.eml", "cfo_example.com.eml", "platform_example.com.eml"]
        (logged,) = state.runs(stage="schedule")
        assert logged["source"] == "nightly" and logged["status"] == "failed"
    finally:
        state.close()


def test_schedule_cli_once(home: Path, config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config_file.write_text(config_file.read_text(encoding="utf-8") + f"""
[[reports.jobs]]
name = "every-minute"
cron = "* * * * *"
timezone = "Europe/Berlin"
steps = ["report"]
send = false
out_dir = "{out}"
""", encoding="utf-8")
    proc = finops("schedule", "--once", "--config", config_file, "--home", home)
    assert proc.returncode == 0, proc.stderr
    assert "job every-minute: succeeded" in proc.stderr
    assert len(list(out.rglob("*.eml"))) == 3
    state = State(home / "state.db")
    try:
        rows = state.db.execute("SELECT job, last_status FROM schedule_jobs").fetchall()
    finally:
        state.close()
    assert [tuple(r) for r in rows] == [("every-minute", "succeeded")]
    bad = finops("schedule", "--once", "--job", "nope", "--config", config_file, "--home", home)
    assert bad.returncode == 2 and "no job named nope" in bad.stdout + bad.stderr
