"""Secrets for tasks: where they come from, which a stage gets, and how a stage names one.

A worker's secrets source is ``HAMSTER_SECRETS_DIR`` (one file per secret, named after it: a Kubernetes
or compose secret mount) and variables ``HAMSTER_SECRET_<NAME>``; a file wins over a variable of the same
name. Both are read at each attempt, so a rotated file is used without a restart. A subscriber names the
secrets its stages get (``Subscriber(..., secrets=["PYPI_TOKEN"])``): they are ``ctx.secrets[NAME]`` in
its tasks, and ``shell(env={"TWINE_PASSWORD": Secret("PYPI_TOKEN")})`` puts one in a command's
environment. A run that is not trusted (a fork's pull request, ``hamster.github.forks``) gets none of them, as
GitHub Actions withholds secrets from forks. Every secret the source holds is masked in every stage's log,
output and error (``hamster.execution.stage_logs``), granted or not.

``grant`` is pure; ``read_source`` is the one place that reads the source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hamster.errors import ConfigurationError

NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
ENV_PREFIX = "HAMSTER_SECRET_"


@dataclass(frozen=True)
class Secret:
    """A secret's name where a value is expected (``shell(env=...)``): resolved at each attempt."""

    name: str

    def __post_init__(self) -> None:
        check_name(self.name)


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigurationError(
            f"secret name {name!r}: use capital letters, digits and '_', starting with a letter"
        )
    return name


@dataclass(frozen=True)
class Grant:
    """What a stage gets: ``secrets`` (name → value); ``withheld``: granted names the run may not have
    (an untrusted fork); ``missing``: granted names the source does not hold."""

    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    withheld: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def grant(available: Mapping[str, str], names: Sequence[str], *, trusted: bool) -> Grant:
    """The secrets a stage of a subscriber granted ``names`` gets from ``available``."""
    if not trusted:
        return Grant(withheld=tuple(names))
    missing = tuple(name for name in names if name not in available)
    return Grant(secrets={name: available[name] for name in names if name in available}, missing=missing)


def resolve_env(
    env: Mapping[str, str | Secret], secrets: Mapping[str, str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """A stage's ``env`` with each ``Secret`` replaced by its value; the names it could not have (left out
    of the environment, as GitHub Actions gives a fork's run empty secrets)."""
    out: dict[str, str] = {}
    absent: list[str] = []
    for key, value in env.items():
        if isinstance(value, Secret):
            if value.name in secrets:
                out[key] = secrets[value.name]
            else:
                absent.append(value.name)
        else:
            out[key] = value
    return out, tuple(absent)


def read_source(secrets_dir: Path | None, environ: Mapping[str, str]) -> dict[str, str]:
    """Every secret the worker holds: ``HAMSTER_SECRET_<NAME>`` variables, then ``secrets_dir``'s files.
    A file's one trailing newline is not part of its secret. Names that are no secret's (``..data`` of a
    Kubernetes mount, ``README``) are skipped."""
    found = {
        key.removeprefix(ENV_PREFIX): value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX) and NAME.match(key.removeprefix(ENV_PREFIX)) and value
    }
    if secrets_dir is not None:
        try:
            entries = sorted(secrets_dir.iterdir())
        except OSError as exc:
            raise ConfigurationError(f"HAMSTER_SECRETS_DIR: cannot read {secrets_dir}: {exc}") from None
        for path in entries:
            if NAME.match(path.name) and path.is_file():
                value = path.read_text().removesuffix("\n")
                if value:
                    found[path.name] = value
    return found
