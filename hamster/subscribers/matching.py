"""Which subscribers an event starts: pure functions over ``EventInfo`` and ``SubscriberSpec``.

Globs follow GitHub Actions' filter patterns: ``*`` matches within one path segment, ``**`` across
segments, ``?`` one character (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#filter-pattern-cheat-sheet).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping

from hamster.intake.github_events import EventInfo
from hamster.subscribers.dispatch import target_of
from hamster.subscribers.spec import SubscriberSpec

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
    # Only deployment events name an environment (``EventInfo.environment``); any other event has none, so
    # it never passes an ``environments`` filter, as a tag push never passes ``branches``.
    if spec.environments is not None and (
        event.environment is None or not glob_match(event.environment, spec.environments)
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
    """Subscribers indexed by event name, then by repository, so matching costs what the candidates cost.

    Within an event name, a subscriber whose ``repos`` are literal names is filed under each name, one whose
    patterns start with a literal owner (``acme/*``, ``acme/api-*``) under that owner, and the rest (no
    ``repos`` filter, or a glob in the owner) is checked for every event of that name.
    """

    def __init__(self, specs: Iterable[SubscriberSpec]) -> None:
        self._by_event: dict[str, _RepoIndex] = {}
        self._any = _RepoIndex()
        self._by_name: dict[str, SubscriberSpec] = {}
        for spec in sorted(specs, key=lambda s: s.name):
            self._by_name[spec.name] = spec
            if "*" in spec.events:
                self._any.add(spec)
            for name in spec.events:
                if name != "*":
                    self._by_event.setdefault(name, _RepoIndex()).add(spec)

    def match(
        self, event: EventInfo, predicates: Mapping[str, Predicate] | None = None
    ) -> list[SubscriberSpec]:
        """The subscribers the event starts, in name order. ``predicates``: subscriber name → ``when``."""
        target = target_of(event)
        if (
            target is not None
        ):  # a manual run or a schedule tick names its subscriber (hamster.subscribers.dispatch)
            return [self._by_name[target]] if target in self._by_name else []
        predicates = predicates or {}
        candidates = self._any.candidates(event.repo)
        by_event = self._by_event.get(event.name)
        if by_event is not None:
            candidates += by_event.candidates(event.repo)
        found = {s.name: s for s in candidates if matches(s, event, predicates.get(s.name))}
        return [found[name] for name in sorted(found)]


_GLOB_CHARS = re.compile(r"[*?]")


class _RepoIndex:
    """One event name's subscribers, filed by the literal part of their repository patterns."""

    def __init__(self) -> None:
        self._exact: dict[str, list[SubscriberSpec]] = {}
        self._by_owner: dict[str, list[tuple[str, SubscriberSpec]]] = {}  # (literal prefix, spec)
        self._unfiled: list[SubscriberSpec] = []

    def add(self, spec: SubscriberSpec) -> None:
        if spec.repos is None or any("/" not in _GLOB_CHARS.split(p, 1)[0] for p in spec.repos):
            self._unfiled.append(spec)
            return
        for pattern in spec.repos:
            literal = _GLOB_CHARS.split(pattern, 1)[0]
            if literal == pattern:
                self._exact.setdefault(pattern, []).append(spec)
            else:
                self._by_owner.setdefault(literal.split("/", 1)[0], []).append((literal, spec))

    def candidates(self, repo: str | None) -> list[SubscriberSpec]:
        """Every subscriber that could match an event on ``repo`` (possibly twice; never one too few)."""
        if repo is None:
            # A subscriber with a repos filter never matches an event without a repository.
            return [s for s in self._unfiled if s.repos is None]
        # A glob's literal prefix must begin the name: a cheap test that spares most full matches.
        owned = [s for prefix, s in self._by_owner.get(repo.split("/", 1)[0], ()) if repo.startswith(prefix)]
        return self._unfiled + self._exact.get(repo, []) + owned
