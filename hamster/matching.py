"""Which subscribers an event starts: pure functions over ``EventInfo`` and ``SubscriberSpec``.

Globs follow GitHub Actions' filter patterns: ``*`` matches within one path segment, ``**`` across
segments, ``?`` one character (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#filter-pattern-cheat-sheet).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping

from hamster.github_events import EventInfo
from hamster.subscribers import SubscriberSpec

log = logging.getLogger(__name__)

Predicate = Callable[[EventInfo], bool]


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(value: str, patterns: Iterable[str]) -> bool:
    return any(_glob(p).match(value) for p in patterns)


def matches(spec: SubscriberSpec, event: EventInfo, when: Predicate | None = None) -> bool:
    """True when the event passes every filter the subscriber sets (AND across, OR within fields)."""
    if "*" not in spec.events and event.name not in spec.events:
        return False
    if spec.actions is not None and event.action not in spec.actions:
        return False
    if spec.repos is not None and (event.repo is None or not glob_match(event.repo, spec.repos)):
        return False
    if spec.branches is not None and (event.branch is None or not glob_match(event.branch, spec.branches)):
        return False
    # Only push payloads list changed files; where the payload does not, a paths filter cannot exclude
    # the event, and running CI is the safer default than silently skipping it.
    if (
        spec.paths is not None
        and event.changed_paths is not None
        and not any(glob_match(path, spec.paths) for path in event.changed_paths)
    ):
        return False
    if spec.labels is not None and not set(spec.labels) & set(event.labels):
        return False
    if spec.commands is not None and not (
        event.comment is not None and any(event.comment.lstrip().startswith(c) for c in spec.commands)
    ):
        return False
    if spec.when is not None:
        if when is None:
            log.warning("subscriber %s: predicate %s is not loaded in this worker", spec.name, spec.when)
            return False
        try:
            return bool(when(event))
        except Exception:
            log.exception("subscriber %s: predicate %s raised; not matching", spec.name, spec.when)
            return False
    return True


class SubscriberIndex:
    """Subscribers indexed by event name, so matching costs what the event's candidates cost."""

    def __init__(self, specs: Iterable[SubscriberSpec]) -> None:
        self._by_event: dict[str, list[SubscriberSpec]] = {}
        self._any: list[SubscriberSpec] = []
        for spec in sorted(specs, key=lambda s: s.name):
            if "*" in spec.events:
                self._any.append(spec)
            for name in spec.events:
                if name != "*":
                    self._by_event.setdefault(name, []).append(spec)

    def match(
        self, event: EventInfo, predicates: Mapping[str, Predicate] | None = None
    ) -> list[SubscriberSpec]:
        """The subscribers the event starts, in name order. ``predicates``: subscriber name → ``when``."""
        predicates = predicates or {}
        candidates = self._by_event.get(event.name, []) + self._any
        found = {s.name: s for s in candidates if matches(s, event, predicates.get(s.name))}
        return [found[name] for name in sorted(found)]
