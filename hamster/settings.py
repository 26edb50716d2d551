"""Hamster's settings: one frozen object, read once from ``HAMSTER_*`` variables at start and passed on."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hamster.credentials import ApiToken, parse_tokens
from hamster.errors import ConfigurationError
from hamster.kafka_access import KafkaAccess, Mechanism, Protocol, problems

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:(\d{1,5})$")
_NAMESPACE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


# Secrets that may come from a file instead (HAMSTER_<NAME>_FILE): the file's content is the secret.
_SECRET_FILES = ("kafka_sasl_password", "audit_key")


class Settings(BaseSettings):
    """Everything Hamster reads from its environment. See the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="HAMSTER_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    # How every Kafka client connects (hamster.kafka_access): TLS and SASL as Kafka names them. A secret
    # can come from a file (``…_FILE``, e.g. a mounted Kubernetes or compose secret) instead of the variable.
    kafka_security_protocol: Protocol = "PLAINTEXT"
    kafka_sasl_mechanism: Mechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None  # None: the system's trusted CAs
    kafka_ssl_certfile: Path | None = None  # a client certificate, for brokers that require one
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    home: Path = Path(".hamster")
    database_url: str | None = None
    subscribers: str | None = None
    webhook_secret: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    namespace: str = "hamster"
    partitions: int = Field(default=4, ge=1, le=256)
    # Replicas of every topic Hamster creates, and how many must hold a write before Kafka acknowledges it
    # (the topics' min.insync.replicas). None: by the brokers the cluster reports (streams.replication).
    replication_factor: int | None = Field(default=None, ge=1, le=32)
    min_insync_replicas: int | None = Field(default=None, ge=1, le=32)
    retention_days: int = Field(default=30, ge=1)
    redelivery_window_days: int = Field(default=3, ge=1)
    # How long Kafka waits for a worker that stopped answering before its partitions go to another
    # worker: the pause a crashed worker's runs see. Too short, and a busy worker loses its partitions.
    kafka_session_timeout_s: float = Field(default=60.0, ge=6.0, le=1800.0)
    # Stage execution (agents.stages): how many stage attempts one worker runs at once, how long a claimed
    # attempt stays its worker's without a renewal, how long a stopping worker lets attempts finish.
    worker_slots: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=1024)
    stage_lease_s: float = Field(default=30.0, ge=3.0, le=3600.0)
    shutdown_grace_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    # The reaper: a run admitted to the workers with no progress for this long fails (no lane waits for
    # ever); a run whose stage request went missing is sent to the workers again after reoffer_after_s.
    stuck_after_s: float = Field(default=3600.0, ge=5.0)
    reoffer_after_s: float = Field(default=30.0, ge=1.0)
    # A worker that does not hold the run-log partition of a run waits this long before claiming its
    # stages, so the partition's holder usually wins without a contest (and a full holder loses nothing).
    claim_delay_s: float = Field(default=0.5, ge=0.0, le=60.0)
    # Where a worker keeps its tables: on disk (RocksDB, under HAMSTER_HOME, so a restart recovers only what
    # changed since), or in memory (every start reads the tables' compacted changelogs).
    table_store: Literal["rocksdb", "memory"] = "rocksdb"
    # Schedules (agents.schedules): a starting worker announces ticks missed while no worker ran, from up
    # to this long before it started, the latest schedule_catch_up of them per schedule at most.
    schedule_catch_up: int = Field(default=1, ge=0, le=1000)
    schedule_catch_up_s: float = Field(default=86400.0, ge=0.0)
    # A stage's output travels in the run log: one larger than this fails the stage rather than the write.
    max_output_bytes: int = Field(default=1024 * 1024, ge=1024, le=16 * 1024 * 1024)
    # A stage attempt's log in <ns>.logs (hamster.execution.stage_logs): past this many bytes the rest is
    # dropped.
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Where stages keep files (hamster.execution.artifacts): an fsspec URL; None: $HAMSTER_HOME/artifacts.
    artifacts_url: str | None = None
    github_api_token: SecretStr | None = None
    github_api_user: str | None = None
    github_host: str | None = None
    # None: https://api.github.com, or https://<github_host>/api/v3 for GitHub Enterprise.
    github_api_url: str | None = None
    # None: ``github.key`` in the working directory if present, else the user's own ssh set-up.
    github_key: Path | None = None
    # Where `checkout` clones from: ``<github_git_url><owner>/<repo>.git``. None: https://<host>/ (or
    # git@<host>: over ssh). A mirror or a local path (file:///srv/git/) can stand in for GitHub.
    github_git_url: str | None = None
    github_known_hosts: Path | None = None  # None: ssh's own (~/.ssh/known_hosts)
    # A GitHub App (README, "GitHub App"): its id and the path of its private key (PEM). With both set,
    # Hamster calls GitHub as the app's installations; without, with the personal token above.
    github_app_id: int | None = Field(default=None, ge=1)
    github_app_key: Path | None = None
    github_write_interval_s: float = Field(default=1.0, ge=0)  # between content-creating calls
    public_url: str | None = None  # base of the run links Hamster puts in statuses and checks
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Bearer token for the dashboard and API with the operate role (as HAMSTER_API_TOKENS' api-token).
    api_token: SecretStr | None = None
    # Secrets for tasks (hamster.execution.secrets): a directory of one file per secret (and
    # HAMSTER_SECRET_<NAME>).
    secrets_dir: Path | None = None
    # "on": shell stages run in the sandbox (hamster.execution.sandbox) and are refused where it cannot run;
    # "off": they run unsandboxed, with the worker's rights (still with the allowlisted environment).
    sandbox: Literal["on", "off"] = "on"
    # Who may read and change through the dashboard and API (README, "Security"). Without a login every
    # page and /api/* route answers 401 (API) or sends the browser to /signin, unless dashboard_public.
    dashboard_public: bool = False
    api_tokens: SecretStr | None = None  # name:role:token entries, comma-separated
    api_tokens_file: Path | None = None  # the same, one a line
    # Signs the session cookies; None: a random key per process (sessions end when `hamster web` stops).
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=8 * 3600, ge=60, le=30 * 86400)
    # Secure cookies: auto = when the request came over https (or HAMSTER_PUBLIC_URL is https).
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # Sign-in with GitHub (an OAuth app; its callback URL is <public url>/signin/github/callback).
    github_oauth_client_id: str | None = None
    github_oauth_client_secret: SecretStr | None = None
    github_web_url: str | None = None  # None: https://github.com, or https://<github_host>
    github_oauth_org: str | None = None  # only members of this organization may sign in
    github_oauth_users: str | None = None  # only these logins (comma-separated) may sign in
    github_oauth_operators: str | None = None  # these logins get the operate role
    github_oauth_role: Literal["read", "operate"] = "read"  # everyone else who may sign in
    # The intake's own share of the process: threads for signature checks and parsing, requests in
    # flight (past it: 503 with Retry-After), and how long a request body may take to arrive (408).
    intake_threads: int = Field(default=4, ge=1, le=256)
    intake_max_in_flight: int = Field(default=64, ge=1, le=100_000)
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600.0)
    # The audit checkpoints (hamster.runs.audit_checkpoints): the HMAC key that signs them (None: none are
    # written and `audit verify` says what it cannot check), and how often a worker writes one.
    audit_key: SecretStr | None = None
    audit_key_file: Path | None = None
    audit_checkpoint_records: int = Field(default=1000, ge=1)
    audit_checkpoint_interval_s: float = Field(default=60.0, ge=0.5)

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: object) -> object:
        """``HAMSTER_X_FILE``: the secret X is the file's content (without its final newline)."""
        if not isinstance(data, dict):
            return data
        for name in _SECRET_FILES:
            path = data.get(f"{name}_file")
            if not path:
                continue
            if data.get(name):
                raise ValueError(f"HAMSTER_{name.upper()} and HAMSTER_{name.upper()}_FILE: set one, not both")
            try:
                data = {**data, name: Path(str(path)).read_text(encoding="utf-8").rstrip("\r\n")}
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"HAMSTER_{name.upper()}_FILE: cannot read {path}: {exc}") from None
        return data

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_port(cls, value: str) -> str:
        for server in value.split(","):
            match = _HOST_PORT.match(server.strip())
            if not match or not 0 < int(match.group(1)) < 65536:
                raise ValueError(f"expected host:port[,host:port…], got {value!r}")
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        # Several secrets, comma-separated, so a secret can be rotated without dropping deliveries.
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _NAMESPACE.match(value):
            raise ValueError("expected lower-case letters, digits, '-' or '_', starting with a letter")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return level

    @model_validator(mode="after")
    def _tokens_parse(self) -> Settings:
        self.api_credentials()  # a malformed entry stops the start, with the entry named
        if (self.github_oauth_client_id is None) != (self.github_oauth_client_secret is None):
            raise ValueError(
                "HAMSTER_GITHUB_OAUTH_CLIENT_ID and HAMSTER_GITHUB_OAUTH_CLIENT_SECRET: set both or neither"
            )
        return self

    def api_credentials(self) -> tuple[ApiToken, ...]:
        """Every API token: HAMSTER_API_TOKEN (operate), HAMSTER_API_TOKENS, HAMSTER_API_TOKENS_FILE."""
        found: list[ApiToken] = []
        if self.api_token is not None and self.api_token.get_secret_value():
            found.append(ApiToken("api-token", "operate", self.api_token.get_secret_value()))
        if self.api_tokens is not None:
            found += parse_tokens(self.api_tokens.get_secret_value())
        if self.api_tokens_file is not None:
            try:
                text = self.api_tokens_file.read_text()
            except OSError as exc:
                raise ValueError(f"HAMSTER_API_TOKENS_FILE: cannot read it: {exc.strerror}") from None
            found += parse_tokens(text, "HAMSTER_API_TOKENS_FILE")
        names = [t.name for t in found]
        if len(set(names)) != len(names):
            raise ValueError("API tokens: a name is given twice across HAMSTER_API_TOKEN(S)(_FILE)")
        return tuple(found)

    @property
    def github_web(self) -> str:
        if self.github_web_url:
            return self.github_web_url.rstrip("/")
        return f"https://{self.github_host}" if self.github_host else "https://github.com"

    @staticmethod
    def logins(value: str | None) -> frozenset[str]:
        return frozenset(v.strip().lower() for v in (value or "").split(",") if v.strip())

    @model_validator(mode="after")
    def _app_complete(self) -> Settings:
        if (self.github_app_id is None) != (self.github_app_key is None):
            missing = "HAMSTER_GITHUB_APP_KEY" if self.github_app_key is None else "HAMSTER_GITHUB_APP_ID"
            raise ValueError(f"{missing}: not set; a GitHub App needs both its id and its private key")
        return self

    @model_validator(mode="after")
    def _insync_within_factor(self) -> Settings:
        factor, insync = self.replication_factor, self.min_insync_replicas
        if factor is not None and insync is not None and insync > factor:
            raise ValueError(
                f"HAMSTER_MIN_INSYNC_REPLICAS: {insync} is more than HAMSTER_REPLICATION_FACTOR ({factor}): "
                "every write would be refused"
            )
        return self

    @model_validator(mode="after")
    def _kafka_complete(self) -> Settings:
        found = problems(self.kafka)
        if found:
            raise ValueError("; ".join(found))
        key = self.audit_key.get_secret_value() if self.audit_key else None
        if key is not None and len(key.encode()) < 32:
            raise ValueError(
                "HAMSTER_AUDIT_KEY: too short; use at least 32 random bytes (openssl rand -hex 32)"
            )
        return self

    @property
    def kafka(self) -> KafkaAccess:
        """How Kafka clients connect: every client is made from this (hamster.kafka_access)."""
        password = self.kafka_sasl_password
        return KafkaAccess(
            bootstrap=self.kafka_bootstrap,
            protocol=self.kafka_security_protocol,
            mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            cafile=self.kafka_ssl_cafile,
            certfile=self.kafka_ssl_certfile,
            keyfile=self.kafka_ssl_keyfile,
            check_hostname=self.kafka_ssl_check_hostname,
        )

    @property
    def github_app(self) -> bool:
        """True when Hamster talks to GitHub as a GitHub App (else with the personal token, if any)."""
        return self.github_app_id is not None

    @property
    def db_url(self) -> str:
        """The SQL projection's URL: ``HAMSTER_DATABASE_URL``, or a sqlite file under ``HAMSTER_HOME``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'hamster.db').resolve()}"

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[0]

    def secrets(self) -> list[bytes]:
        return [secret.get_secret_value().encode() for secret in self.webhook_secret]

    def revealed(self) -> dict[str, Any]:
        """Every setting as JSON, secrets in the clear: what a task process is given over its socket
        (``hamster.execution.task_processes``) instead of through its environment. ``Settings(**revealed())``
        is these settings again, except that a secret read from a file travels as its value, without the
        file's path (the two together would be refused, and the task process need not read the file)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, tuple):
                value = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in value]
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        for name in _SECRET_FILES:
            if out[name] is not None:
                out[f"{name}_file"] = None
        return out


def variables() -> frozenset[str]:
    """The names of the variables Hamster's settings are read from (``HAMSTER_KAFKA_BOOTSTRAP``, …)."""
    return frozenset(f"HAMSTER_{name.upper()}" for name in Settings.model_fields)


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; a missing or malformed variable becomes one ``ConfigurationError`` line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a check across fields names them in its message
            raise ConfigurationError(str(first["msg"]).removeprefix("Value error, ")) from None
        field = str(first["loc"][0])
        raise ConfigurationError(f"HAMSTER_{field.upper()}: {first['msg']}") from None
