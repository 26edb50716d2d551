"""Match scaling: the cost of matching one event against 10, 100 and 1,000 subscribers (in process).

Subscribers are spread over a dozen event names and over repositories (``org-<i>/repo-<j>`` globs and a few
org-wide ``org-<i>/*`` ones), as a real installation's would be; the event is the recorded pull_request
sample moved to one of those repositories. Three figures per count: matching against a built index (what
``SubscriberIndex.match`` costs, the figure the target is about); building the index and matching (what the
match agent paid while it rebuilt the index for every event); and checking every subscriber of the event's
name (the index before it filed subscribers by repository).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from bench.stats import median
from hamster.intake.github_events import EventInfo, event_info
from hamster.subscribers.matching import SubscriberIndex, matches
from hamster.subscribers.spec import SubscriberSpec

EVENTS = [
    "pull_request", "push", "issue_comment", "issues", "release", "check_run",
    "check_suite", "workflow_run", "create", "delete", "status", "deployment",
]  # fmt: skip
COUNTS = (10, 100, 1000)


def subscribers(count: int) -> list[SubscriberSpec]:
    specs = []
    for i in range(count):
        org, repo = f"org-{i % 37}", f"repo-{i % 101}"
        repos = (f"{org}/*",) if i % 10 == 0 else (f"{org}/{repo}", f"{org}/{repo}-*")
        specs.append(
            SubscriberSpec(
                name=f"sub-{i:04d}",
                events=(EVENTS[i % len(EVENTS)],),
                actions=("opened", "synchronize") if i % 2 else None,
                repos=repos,
                branches=("main", "release/**") if i % 3 else None,
                pipeline=("first", "second", "third"),
            )
        )
    return specs


def _per_call_us(calls: dict[str, Callable[[], Any]], budget_s: float) -> dict[str, float]:
    """Median microseconds per call of each callable, over 10 rounds that time one batch of each in turn.

    Interleaving the batches spreads any background load evenly over the callables compared, so their ratio
    holds on a busy machine even when the absolute figures do not.
    """
    sizes = {}
    for key, call in calls.items():  # calibrate each batch to about a tenth of the budget's share
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget_s / 10 / len(calls):
            call()
            n += 1
        sizes[key] = n
    batches: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(10):
        for key, call in calls.items():
            t0 = time.perf_counter()
            for _ in range(sizes[key]):
                call()
            batches[key].append((time.perf_counter() - t0) / sizes[key] * 1e6)
    return {key: median(values) for key, values in batches.items()}


def _build_and_match(specs: list[SubscriberSpec], info: EventInfo) -> list[SubscriberSpec]:
    return SubscriberIndex(specs).match(info)


def _check_each(specs: list[SubscriberSpec], info: EventInfo) -> list[SubscriberSpec]:
    return [s for s in specs if matches(s, info)]


def run(payload: dict[str, Any], budget_s: float = 1.0) -> dict[str, Any]:
    payload = {**payload, "repository": {**payload["repository"], "full_name": "org-0/repo-0"}}
    info = event_info("pull_request", "00000000-0000-4000-8000-000000000000", payload)
    calls: dict[str, dict[str, Callable[[], Any]]] = {
        "us_per_event": {},
        "us_per_event_with_index_build": {},
        "us_per_event_by_event_name_only": {},
    }
    matched = {}
    for count in COUNTS:
        specs = subscribers(count)
        index = SubscriberIndex(specs)
        matched[str(count)] = len(index.match(info))
        calls["us_per_event"][str(count)] = functools.partial(index.match, info)
        calls["us_per_event_with_index_build"][str(count)] = functools.partial(_build_and_match, specs, info)
        # The index before it filed subscribers by repository: every subscriber of the event's name checked.
        by_name = [s for s in specs if info.name in s.events or "*" in s.events]
        calls["us_per_event_by_event_name_only"][str(count)] = functools.partial(_check_each, by_name, info)
    out: dict[str, Any] = {figure: _per_call_us(each, budget_s) for figure, each in calls.items()}
    out["matched"] = matched
    per, before = out["us_per_event"], out["us_per_event_by_event_name_only"]
    out["ratio_1000_to_10"] = per["1000"] / per["10"]
    out["ratio_1000_to_10_by_event_name_only"] = before["1000"] / before["10"]
    return out
