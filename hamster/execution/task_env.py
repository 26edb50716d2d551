"""The environments Hamster's child processes get: an allowlist, never the worker's own.

Pure. A task (a ``shell`` command) starts from nothing but ``PATH``, ``HOME``, ``LANG`` and the locale
(``TASK_VARIABLES``), then Hamster's facts about the run (``HAMSTER_RUN_ID``, ``HAMSTER_WORKSPACE``) and
what the stage itself sets (``shell(env=...)``, with the secrets its subscriber was granted). No
``HAMSTER_*`` setting ever reaches one. A Python task process (``hamster.execution.task_processes``) runs the
pipeline's own code, which is trusted: it keeps the worker's environment but for Hamster's settings (they
come over its socket) and anything named like a credential (``process_env``). ``git`` (``checkout``,
Hamster's own code, before any pull-request code runs) also keeps what reaches a remote: proxies, CA
bundles and the ssh agent (``GIT_VARIABLES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TASK_VARIABLES: tuple[str, ...] = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ")
# Names that say a variable holds a credential (as ``hamster.execution.stage_logs`` masks them).
SECRET_WORDS: tuple[str, ...] = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "API_KEY")
GIT_VARIABLES: tuple[str, ...] = (
    *TASK_VARIABLES,
    "SSH_AUTH_SOCK",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "GIT_SSL_CAINFO",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def allowed(environ: Mapping[str, str], names: Iterable[str] = TASK_VARIABLES) -> dict[str, str]:
    """Only ``names`` of ``environ``; ``PATH`` is always set."""
    env = {name: environ[name] for name in names if name in environ}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def process_env(environ: Mapping[str, str], settings_variables: Iterable[str]) -> dict[str, str]:
    """A Python task process's environment: the worker's, without Hamster's settings (they come over the
    process's socket) and without any variable named like a credential. What a subscribers module reads
    from its environment (its own variables) stays."""
    dropped = set(settings_variables)
    return {
        key: value
        for key, value in environ.items()
        if key not in dropped and not any(word in key.upper() for word in SECRET_WORDS)
    }


def task_env(
    environ: Mapping[str, str], *, facts: Mapping[str, str], stage: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A task's environment: the allowlist of ``environ``, Hamster's ``facts`` about the run, then what the
    stage sets (its own values and the secrets it was granted, already resolved)."""
    return {**allowed(environ), **facts, **(stage or {})}


def for_git(environ: Mapping[str, str], plan: Mapping[str, str]) -> dict[str, str]:
    """``git``'s environment for a checkout: the allowlist with what reaches a remote, then the plan's."""
    return {**allowed(environ, GIT_VARIABLES), **plan}
