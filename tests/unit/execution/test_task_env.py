"""Task environments are allowlists: nothing of the worker's settings or credentials gets through."""

from __future__ import annotations

from hamster.execution.task_env import allowed, for_git, process_env, task_env
from hamster.settings import variables

WORKER = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "HAMSTER_DATABASE_URL": "postgresql://hamster:pw-123@db/hamster",
    "HAMSTER_API_TOKEN": "api-secret",
    "HAMSTER_GITHUB_KEY": "/etc/hamster/github.key",
    "HAMSTER_KAFKA_BOOTSTRAP": "127.0.0.1:9092",
    "HAMSTER_SECRET_PYPI_TOKEN": "pypi-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "GITHUB_TOKEN": "gh-secret",
    "HTTPS_PROXY": "http://proxy:3128",
    "MY_PIPELINE_SETTING": "kept",
    "HAMSTER_TEST_MARKS": "/tmp/marks",
}


def test_a_task_gets_the_allowlist_the_facts_and_what_its_stage_sets():
    """PATH, HOME and LANG of the worker, the run's facts, the stage's own values; nothing else."""
    env = task_env(WORKER, facts={"HAMSTER_RUN_ID": "r1"}, stage={"TWINE_PASSWORD": "granted"})
    assert env == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "HAMSTER_RUN_ID": "r1",
        "TWINE_PASSWORD": "granted",
    }


def test_path_is_always_set():
    """A worker without PATH still gives its tasks one."""
    assert allowed({})["PATH"]


def test_git_keeps_what_reaches_a_remote_and_no_setting():
    """checkout's git keeps proxies (and the allowlist), never a HAMSTER_* setting or a token."""
    env = for_git(WORKER, {"GIT_TERMINAL_PROMPT": "0"})
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["GIT_TERMINAL_PROMPT"] == "0"
    assert not [k for k in env if k.startswith("HAMSTER_") or "TOKEN" in k or "SECRET" in k]


def test_a_task_process_keeps_its_pipelines_variables_but_no_setting_or_credential():
    """A Python task process loses every HAMSTER_* setting and every variable named like a credential;
    the pipeline's own variables stay."""
    env = process_env(WORKER, variables())
    assert env["MY_PIPELINE_SETTING"] == "kept" and env["HAMSTER_TEST_MARKS"] == "/tmp/marks"
    assert env["PATH"] == "/usr/bin:/bin"
    for gone in (
        "HAMSTER_DATABASE_URL",
        "HAMSTER_API_TOKEN",
        "HAMSTER_GITHUB_KEY",
        "HAMSTER_KAFKA_BOOTSTRAP",
        "HAMSTER_SECRET_PYPI_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "GITHUB_TOKEN",
    ):
        assert gone not in env, gone


def test_the_settings_variables_are_every_setting():
    """variables() names every setting, so process_env drops each one."""
    assert {
        "HAMSTER_DATABASE_URL",
        "HAMSTER_API_TOKEN",
        "HAMSTER_SECRETS_DIR",
        "HAMSTER_SANDBOX",
    } <= variables()
