"""A changed subscribers module for the dry-run test: ``replayable`` narrowed to two repositories, and a
new ``newcomer`` on a third. Loaded only by `hamster replay events --dry-run --subscribers`."""

from __future__ import annotations

from hamster import Subscriber
from tests.pipelines.replay_catalog import check, checkout, finish, flaky, prepare

SUBSCRIBERS = [
    Subscriber(
        "replayable",
        events=["pull_request"],
        actions=["opened"],
        repos=["replay/r-0", "replay/r-1"],
        pipeline=[checkout, check],
    ),
    Subscriber("newcomer", events=["pull_request"], repos=["replay/r-4"], pipeline=[checkout]),
    Subscriber("fixable", events=["pull_request"], repos=["fix/*"], pipeline=[prepare, flaky, finish]),
]
