"""Secrets for tasks: read from the source, granted per subscriber, withheld from untrusted runs, masked."""

from __future__ import annotations

import hashlib
import json

import pytest

from hamster import Secret, Subscriber, task
from hamster.errors import ConfigurationError
from hamster.execution.outcome import Failed, Succeeded, masked
from hamster.execution.secrets import grant, read_source, resolve_env
from hamster.execution.stage_logs import mask_json, worker_secrets
from hamster.settings import Settings


@task
def noop(ctx):
    return None


def test_the_source_is_a_directory_of_files_and_prefixed_variables(tmp_path):
    """One file per secret (a trailing newline is not part of it) wins over HAMSTER_SECRET_<NAME>; names
    that are no secret's, and empty values, are skipped."""
    (tmp_path / "PYPI_TOKEN").write_text("pypi-from-file\n")
    (tmp_path / "..data").mkdir()
    (tmp_path / "README.md").write_text("not a secret")
    (tmp_path / "EMPTY").write_text("")
    environ = {
        "HAMSTER_SECRET_PYPI_TOKEN": "pypi-from-env",
        "HAMSTER_SECRET_DEPLOY": "deploy-from-env",
        "HAMSTER_SECRET_lower": "ignored",
        "PATH": "/bin",
    }
    assert read_source(tmp_path, environ) == {"PYPI_TOKEN": "pypi-from-file", "DEPLOY": "deploy-from-env"}
    assert read_source(None, environ) == {"PYPI_TOKEN": "pypi-from-env", "DEPLOY": "deploy-from-env"}


def test_an_unreadable_source_is_one_clear_error(tmp_path):
    """A HAMSTER_SECRETS_DIR that is not there says so."""
    with pytest.raises(ConfigurationError, match="HAMSTER_SECRETS_DIR"):
        read_source(tmp_path / "missing", {})


def test_a_stage_gets_only_what_its_subscriber_was_granted():
    """Granted names present are given, absent ones are missing; an untrusted run gets none of them."""
    available = {"PYPI_TOKEN": "p", "DEPLOY_KEY": "d"}
    given = grant(available, ["PYPI_TOKEN", "NPM_TOKEN"], trusted=True)
    assert given.secrets == {"PYPI_TOKEN": "p"} and given.missing == ("NPM_TOKEN",) and given.withheld == ()
    withheld = grant(available, ["PYPI_TOKEN"], trusted=False)
    assert withheld.secrets == {} and withheld.withheld == ("PYPI_TOKEN",)
    assert "p" not in repr(given)


def test_a_shell_env_names_secrets_that_are_resolved_or_left_out():
    """Secret(NAME) in shell(env=...) becomes its value when the stage has it, else is left out."""
    env = {"TWINE_PASSWORD": Secret("PYPI_TOKEN"), "CI": "1", "NPM": Secret("NPM_TOKEN")}
    assert resolve_env(env, {"PYPI_TOKEN": "p"}) == ({"TWINE_PASSWORD": "p", "CI": "1"}, ("NPM_TOKEN",))


def test_secret_names_are_checked_where_they_are_declared():
    """A subscriber's secrets and a Secret are named in capitals; anything else stops the module."""
    with pytest.raises(ConfigurationError, match="secret name"):
        Secret("pypi-token")
    with pytest.raises(ConfigurationError, match="secret name"):
        Subscriber("s", events=["push"], pipeline=[noop], secrets=["../etc/passwd"])
    granted = Subscriber("s", events=["push"], pipeline=[noop], secrets="PYPI_TOKEN")
    assert granted.spec.secrets == ("PYPI_TOKEN",)


def test_granting_nothing_keeps_a_subscribers_version():
    """Subscribers that grant no secrets and trust no forks keep the version they had before these fields."""
    plain = Subscriber("s", events=["push"], pipeline=[noop])
    before = plain.spec.model_dump(
        mode="json", exclude={"version", "graph", "schedule", "secrets", "trust_forks"}
    )
    digest = hashlib.sha256(json.dumps(before, sort_keys=True, separators=(",", ":")).encode())
    assert plain.spec.version == digest.hexdigest()[:16]
    granted = Subscriber("s", events=["push"], pipeline=[noop], secrets=["PYPI_TOKEN"])
    trusting = Subscriber("s", events=["push"], pipeline=[noop], trust_forks=True)
    assert len({plain.spec.version, granted.spec.version, trusting.spec.version}) == 3


def test_outputs_and_errors_are_masked_before_they_are_recorded():
    """Every secret becomes *** in an output (values and keys, nested) and in an error and its traceback."""
    secrets = ["s3cr3t-value", "tok"]
    output = {"env": ["A=s3cr3t-value", 3, None], "s3cr3t-value": {"deep": "x tok y"}}
    assert mask_json(output, secrets) == {"env": ["A=***", 3, None], "***": {"deep": "x *** y"}}
    done = masked(Succeeded(output, 1.0), secrets)
    assert isinstance(done, Succeeded) and "s3cr3t" not in str(done.output)
    failed = masked(Failed("E", "leaked s3cr3t-value", "tb: tok", 1.0), secrets)
    assert failed == Failed("E", "leaked ***", "tb: ***", 1.0)


def test_the_worker_masks_the_database_password():
    """The password of HAMSTER_DATABASE_URL is one of the worker's secrets."""
    settings = Settings(database_url="postgresql://hamster:db-pw-4711@db:5432/hamster")
    assert "db-pw-4711" in worker_secrets(settings, environ={})


def test_settings_travel_to_a_task_process_whole():
    """A task process rebuilds the worker's settings, secrets included, from what it is sent."""
    settings = Settings(
        webhook_secret="one-secret-0123456789,two-secret-0123456789",  # type: ignore[arg-type]
        api_token="api-0123456789",  # type: ignore[arg-type]
        secrets_dir="/run/secrets",  # type: ignore[arg-type]
    )
    again = Settings(**settings.revealed())
    assert again == settings and again.secrets() == settings.secrets()


def test_settings_with_secrets_from_files_travel_to_a_task_process(tmp_path):
    """A Kafka password or audit key read from its file travels as its value: the task process does not
    get both (which the settings refuse) and need not read the file."""
    (tmp_path / "kafka").write_text("kafka-pw-0123456789\n")
    (tmp_path / "audit").write_text("a" * 40)
    settings = Settings(
        kafka_security_protocol="SASL_SSL",  # type: ignore[arg-type]
        kafka_sasl_username="ci",  # type: ignore[arg-type]
        kafka_sasl_password_file=tmp_path / "kafka",  # type: ignore[arg-type]
        audit_key_file=tmp_path / "audit",  # type: ignore[arg-type]
    )
    again = Settings(**settings.revealed())
    assert again.kafka == settings.kafka and again.kafka.password == "kafka-pw-0123456789"
    assert again.audit_key == settings.audit_key
    assert again.kafka_sasl_password_file is None and again.audit_key_file is None
