"""The subscriber API: declaring tasks and subscribers, and loading a module, with clear errors."""

from __future__ import annotations

import sys
import textwrap

import pytest

from hamster import Subscriber, task
from hamster.errors import ConfigurationError
from hamster.subscribers.spec import build_catalog, load_catalog


@task
def lint(ctx):
    return {"warnings": 0}


@task(name="unit-tests", timeout=600, retries=2)
def unit_tests(ctx):
    return None


def test_task_decorator_forms():
    """@task and @task(...) both make named tasks with their options."""
    assert (lint.name, lint.timeout, lint.retries) == ("lint", None, 0)
    assert (unit_tests.name, unit_tests.timeout, unit_tests.retries) == ("unit-tests", 600, 2)
    assert lint(None) == {"warnings": 0}


def test_bad_task_names_and_options():
    """A task name that cannot name a topic, or a bad timeout, is refused."""
    with pytest.raises(ConfigurationError, match="task name"):
        task(name="a b")(lambda ctx: None)
    with pytest.raises(ConfigurationError, match="timeout"):
        task(name="ok", timeout=0)(lambda ctx: None)


def test_environments_is_a_filter_field():
    """environments= goes into the spec like the other filters; a lone string means a list of one."""
    sub = Subscriber("d", events=["deployment"], pipeline=[lint], environments="production")
    assert sub.spec.environments == ("production",)
    assert Subscriber("d", events=["deployment"], pipeline=[lint]).spec.environments is None


def test_version_is_a_content_hash():
    """Same configuration, same version; any change, a new one."""
    a = Subscriber("x", events=["push"], pipeline=[lint])
    b = Subscriber("x", events=["push"], pipeline=[lint])
    c = Subscriber("x", events=["push"], pipeline=[lint], params={"v": 1})
    assert a.spec.version == b.spec.version != c.spec.version


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": ["pull_reqest"], "pipeline": [lint]}, "unknown GitHub event"),
        ({"events": [], "pipeline": [lint]}, "events"),
        ({"events": ["push"], "pipeline": []}, "pipeline is empty"),
        ({"events": ["push"], "pipeline": [print]}, "not a task"),
        ({"events": ["push"], "pipeline": [lint, lint]}, "twice"),
        ({"events": ["push"], "pipeline": [lint], "params": {"x": object()}}, "JSON"),
        ({"events": ["deployment"], "pipeline": [lint], "environments": []}, "environments"),
    ],
)
def test_bad_subscribers_fail_clearly(kwargs, message):
    """Each mistake in a Subscriber names the subscriber and the problem."""
    with pytest.raises(ConfigurationError, match=message):
        Subscriber("bad", **kwargs)


def test_duplicate_subscriber_names():
    """Two subscribers with one name are refused."""
    subs = [Subscriber("same", events=["push"], pipeline=[lint])] * 2
    with pytest.raises(ConfigurationError, match="duplicate subscriber name"):
        build_catalog("m", subs)


def test_catalog_collects_tasks():
    """The catalog knows every task its pipelines name."""
    catalog = build_catalog("m", [Subscriber("a", events=["push"], pipeline=[lint, unit_tests])])
    assert set(catalog.tasks) == {"lint", "unit-tests"}


def write_module(tmp_path, monkeypatch, name, body):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return name


def test_load_module(tmp_path, monkeypatch):
    """A module with SUBSCRIBERS loads into a catalog."""
    name = write_module(
        tmp_path,
        monkeypatch,
        "subs_ok",
        """
        from hamster import Subscriber, task
        @task
        def t(ctx): return 1
        SUBSCRIBERS = [Subscriber("a", events=["push"], pipeline=[t])]
    """,
    )
    assert [s.name for s in load_catalog(name).subscribers] == ["a"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("import does_not_exist_anywhere\n", "cannot import it: ModuleNotFoundError"),
        ("X = 1\n", "defines no SUBSCRIBERS"),
        ("raise ValueError('broken')\n", "ValueError: broken"),
    ],
)
def test_bad_modules(tmp_path, monkeypatch, body, message):
    """An import error or a missing SUBSCRIBERS is one clear ConfigurationError."""
    name = write_module(tmp_path, monkeypatch, f"subs_bad_{abs(hash(body))}", body)
    with pytest.raises(ConfigurationError, match=message):
        load_catalog(name)


def test_unset_module():
    """No HAMSTER_SUBSCRIBERS is a clear error naming the variable."""
    with pytest.raises(ConfigurationError, match="HAMSTER_SUBSCRIBERS"):
        load_catalog(None)
