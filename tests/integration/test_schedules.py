"""Schedules end to end: real broker, real `hamster web`, two real workers that both announce every tick."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

import pytest

from hamster.intake.envelope import decode_envelope
from hamster.subscribers.schedules import ticks
from streams.reader import read_topic
from tests.integration.system import System, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

CRON = "* * * * * */3"  # tests.pipelines.schedules: every three seconds


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("schedules"), "tests.pipelines.schedules")
    hamster.env.update(HAMSTER_SCHEDULE_CATCH_UP="2")
    with hamster.running({"ticker"}, workers=2):
        yield hamster


def announced(system: System) -> Counter[str]:
    """How many times each tick's event is in the events topic, by tick."""
    records = read_topic(system.kafka, f"{system.namespace}.events")
    return Counter(decode_envelope(r.value).payload["tick"] for r in records)


def runs_by_tick(system: System) -> Counter[str]:
    return Counter(r["stages"][0]["output"]["tick"] for r in system.runs() if r["status"] == "succeeded")


def test_two_workers_announce_every_tick_and_each_tick_runs_once(system: System):
    """Both workers write each tick's event; the redelivery filter lets one run start per tick."""
    wait_until(
        lambda: len([t for t, n in announced(system).items() if n >= 2]) >= 3, 120, what="ticks from both"
    )

    def both_announced_and_ran() -> set[str]:
        return {tick for tick, n in announced(system).items() if n >= 2} & set(runs_by_tick(system))

    # Ticks announced by one worker only (while the other started) may run first: wait for shared ones.
    wait_until(lambda: len(both_announced_and_ran()) >= 2, 120, what="ticks both workers announced to run")
    ran = runs_by_tick(system)
    assert set(ran.values()) == {1}, f"a tick ran more than once: {ran}"
    runs = system.runs()
    assert {r["event"] for r in runs} == {"schedule"}
    assert {r["stages"][0]["output"]["branch"] for r in runs if r["stages"][0]["output"]} == {"main"}
    assert {r["repo"] for r in runs} == {"sched/app"}


def test_ticks_missed_while_no_worker_ran_are_caught_up_to_the_bound(system: System):
    """With every worker stopped for several ticks, a starting worker announces the latest two ticks before
    it started (HAMSTER_SCHEDULE_CATCH_UP=2), not the older ones it missed; each runs once."""
    # The missed ticks count from the last one announced before the stop, so one must have been.
    wait_until(lambda: announced(system), 60, what="a first tick announced")
    system.stop("worker-1")
    system.stop("worker-2")
    last = datetime.fromisoformat(max(announced(system)))
    # Stay down until at least four ticks went by unannounced.
    wait_until(
        lambda: len(ticks(CRON, last, datetime.now().astimezone())) >= 4, 60, what="four ticks to pass"
    )
    system.start_worker("worker-3")
    found = wait_until(
        lambda: re.search(r"catching up from (\S+)", system.log_tail("worker-3", 400)),
        90,
        what="the scheduler",
    )
    started = datetime.fromisoformat(found.group(1))
    missed = ticks(CRON, last, started)
    assert len(missed) >= 4
    expected = {t.isoformat() for t in missed[-2:]}
    wait_until(lambda: expected <= set(runs_by_tick(system)), 120, what="the two latest missed ticks to run")
    caught_up = {t for t in announced(system) if last < datetime.fromisoformat(t) <= started}
    assert caught_up == expected
    assert set(runs_by_tick(system).values()) == {1}
