"""Subscriber history folds into the subscribers table; only real changes count."""

from __future__ import annotations

from hamster import Subscriber, task
from hamster.subscribers.changes import (
    SubscriberDisabled,
    SubscriberEnabled,
    SubscriberPublished,
    apply_change,
    fold_changes,
)


@task
def t(ctx):
    return None


SPEC = Subscriber("s", events=["push"], pipeline=[t]).spec
SPEC2 = Subscriber("s", events=["push", "pull_request"], pipeline=[t]).spec


def test_republishing_the_same_version_changes_nothing():
    """A worker restart publishing the same spec writes no history."""
    state = apply_change(None, SubscriberPublished(name="s", spec=SPEC))
    assert state is not None and state.enabled
    assert apply_change(state, SubscriberPublished(name="s", spec=SPEC)) is None


def test_disable_outlives_a_new_version():
    """Disabled stays disabled when a new version is deployed, until enabled."""
    table = fold_changes(
        [
            SubscriberPublished(name="s", spec=SPEC),
            SubscriberDisabled(name="s"),
            SubscriberPublished(name="s", spec=SPEC2),
        ]
    )
    assert not table["s"].enabled and table["s"].spec.version == SPEC2.version
    table = fold_changes(
        [SubscriberPublished(name="s", spec=SPEC), SubscriberDisabled(name="s"), SubscriberEnabled(name="s")]
    )
    assert table["s"].enabled


def test_toggling_unknown_or_unchanged():
    """Disabling an unknown subscriber, or one already disabled, changes nothing."""
    assert apply_change(None, SubscriberDisabled(name="s")) is None
    state = apply_change(None, SubscriberPublished(name="s", spec=SPEC))
    assert apply_change(state, SubscriberEnabled(name="s")) is None
