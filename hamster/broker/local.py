"""``LocalBroker``: start, stop and inspect one local Kafka whose files live under ``settings.home``.

Theory of operation. ``start`` takes a lock, returns at once if the pid file names a live broker that
answers, otherwise makes sure the jars are cached, writes the config, formats the storage on the very first
start, launches the JVM in a session of its own (so it outlives the command and ignores the terminal's
Ctrl-C) and waits until a metadata request succeeds. A launch that fails or times out is killed and reported
with the first error and the last lines of the broker's log. ``stop`` sends SIGTERM and waits; SIGKILL only
after the timeout.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hamster.broker import config, jars, probe
from hamster.broker.log_excerpt import excerpt
from hamster.broker.process import is_alive, locked, read_pid, terminate, write_pid
from hamster.errors import BrokerError, ConfigurationError
from hamster.settings import Settings

_FORMAT_TIMEOUT_S = 120.0
_KILL_TIMEOUT_S = 10.0
_PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class BrokerStatus:
    """What ``hamster broker status`` reports."""

    running: bool  # the process is alive and answers metadata requests
    pid: int | None  # set whenever the process is alive, even if it does not answer (yet)
    bootstrap: str
    data_dir: Path
    log_file: Path


class LocalBroker:
    """One single-node Kafka for development and tests.

    Files, under ``settings.home``::

        kafka/server.properties   written on every start
        kafka/log4j2.properties   written on every start
        kafka/cluster.id          made once
        kafka/data/               log.dirs, formatted on the first start (meta.properties)
        kafka/broker.pid          while it runs
        kafka/broker.lock         held by start and stop
        logs/server.log           Kafka's log (size-capped, rolled to server.log.1…)
        logs/broker.out           the JVM's stdout and stderr
    """

    def __init__(
        self,
        settings: Settings,
        progress: Callable[[str], None] | None = None,
        secure: config.SecureListener | None = None,
    ) -> None:
        """``secure``: serve clients over SASL_SSL only (``settings.kafka`` must then say how to log in)."""
        wanted = "SASL_SSL" if secure is not None else "PLAINTEXT"
        if settings.kafka_security_protocol != wanted:
            raise ConfigurationError(
                f"HAMSTER_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}: the local broker "
                f"serves {wanted} (`hamster broker` is for development, on loopback); point Hamster at "
                "your own secured Kafka instead"
            )
        self._secure = secure
        self._access = settings.kafka
        self._host = config.listen_host(settings.kafka_host)
        self._port = settings.kafka_port
        config.controller_port(self._port)  # refuse an impossible port now rather than at launch
        self.bootstrap = f"{settings.kafka_host}:{settings.kafka_port}"
        self.data_dir = settings.home / "kafka"
        self.log_dir = settings.home / "logs"
        self.log_file = self.log_dir / "server.log"
        self._progress = progress or (lambda _message: None)
        # Absolute paths for the JVM (it runs in the kafka dir) and for the pid check (it compares command
        # lines), whatever the working directory of a later command.
        self._kafka = self.data_dir.absolute()
        self._logs = self.log_dir.absolute()
        self._properties = self._kafka / "server.properties"
        self._pid_file = self._kafka / "broker.pid"
        self._process: subprocess.Popen[bytes] | None = None

    def status(self) -> BrokerStatus:
        """Whether the broker runs and answers, from its pid file and a metadata request."""
        pid = self._live_pid()
        return self._status(pid is not None and self._answers(timeout_s=5.0), pid)

    def start(self, timeout_s: float = 90.0) -> BrokerStatus:
        """Start the broker unless it already runs; return once it answers metadata requests.

        ``timeout_s`` bounds the wait for the JVM to answer, not the one-off jar download before it.
        """
        self._kafka.mkdir(parents=True, exist_ok=True)
        with locked(self._kafka / "broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                if self._wait_until_ready(pid, time.monotonic() + timeout_s):
                    return self._status(True, pid)
                raise BrokerError(
                    f"broker pid {pid} runs but does not answer on {self.bootstrap}: stop it with "
                    f"`hamster broker stop` and start again (log: {self.log_file})"
                )
            self._pid_file.unlink(missing_ok=True)  # stale: its process is gone
            java = jars.find_java()
            lib = jars.ensure_jars(self._progress)
            self._write_config()
            self._format_once(java, lib)
            return self._launch(java, lib, timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Stop the broker cleanly; return the pid that was stopped, or None if none was running."""
        self._kafka.mkdir(parents=True, exist_ok=True)
        with locked(self._kafka / "broker.lock"):
            pid = self._live_pid()
            if pid is not None:
                if not terminate(pid, lambda: self._alive(pid), timeout_s):
                    self._progress(f"broker pid {pid} did not stop within {timeout_s:.0f} s: killed it")
                if self._alive(pid):
                    raise BrokerError(f"broker pid {pid} survived SIGKILL")
            self._pid_file.unlink(missing_ok=True)
            return pid

    # -- internals -------------------------------------------------------------------------------------------

    def _status(self, running: bool, pid: int | None) -> BrokerStatus:
        return BrokerStatus(running, pid, self.bootstrap, self.data_dir, self.log_file)

    def _answers(self, timeout_s: float) -> bool:
        cluster_id = self._cluster_id()
        return cluster_id is not None and probe.answers(self._access, cluster_id, timeout_s)

    def _cluster_id(self) -> str | None:
        """The id the data dir was formatted with: another broker on our port has another one."""
        try:
            text = (self._kafka / "data" / "meta.properties").read_text()
        except OSError:
            return None
        found = re.search(r"^cluster\.id=(\S+)$", text, re.MULTILINE)
        return found.group(1) if found else None

    def _live_pid(self) -> int | None:
        pid = read_pid(self._pid_file)
        return pid if pid is not None and self._alive(pid) else None

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None  # our own child: poll() also reaps it
        return is_alive(pid, marker=str(self._properties))

    def _wait_until_ready(self, pid: int, deadline: float) -> bool:
        while self._alive(pid):
            # A local broker answers in milliseconds; a short probe notices a dead JVM sooner.
            if self._answers(timeout_s=_PROBE_TIMEOUT_S):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
        return False

    def _write_config(self) -> None:
        self._logs.mkdir(parents=True, exist_ok=True)
        keystore = self._kafka / "keystore.pem"
        if self._secure is not None:
            # Kafka's PEM keystore file: the private key, then the certificate chain; readable by us only.
            keystore.touch()
            keystore.chmod(0o600)
            keystore.write_text(
                self._secure.keyfile.read_text() + self._secure.certfile.read_text(), encoding="utf-8"
            )
        properties = config.server_config(
            self._host, self._port, self._kafka / "data", self._secure, keystore
        )
        self._properties.touch()
        self._properties.chmod(0o600)  # the broker's own SASL password is in it
        self._properties.write_text(config.render_properties(properties), encoding="utf-8")
        (self._kafka / "log4j2.properties").write_text(
            jars.package_file("log4j2.properties"), encoding="utf-8"
        )

    def _jvm_paths(self, lib: Path) -> tuple[Path, Path, Path, Path]:
        return lib, self._properties, self._kafka / "log4j2.properties", self._logs

    def _format_once(self, java: str, lib: Path) -> None:
        """Format the data dir on the first start only (meta.properties marks it; a second format fails)."""
        if (self._kafka / "data" / "meta.properties").exists():
            return
        id_file = self._kafka / "cluster.id"
        cluster_id = id_file.read_text().strip() if id_file.exists() else ""
        if not cluster_id:
            cluster_id = config.new_cluster_id()
            id_file.write_text(cluster_id + "\n")
        self._progress(f"formatting Kafka storage in {self.data_dir / 'data'} (first start)")
        scram = config.scram_arguments(self._secure) if self._secure is not None else []
        command = config.format_command(java, *self._jvm_paths(lib), cluster_id, scram)
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_FORMAT_TIMEOUT_S,
                cwd=self._kafka,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"formatting Kafka storage took over {_FORMAT_TIMEOUT_S:.0f} s") from exc
        if result.returncode != 0:
            output = excerpt((result.stdout + result.stderr).strip().splitlines())
            raise BrokerError("formatting Kafka storage failed:\n" + "\n".join(output))

    def _launch(self, java: str, lib: Path, timeout_s: float) -> BrokerStatus:
        self._progress(f"starting Kafka {config.KAFKA_VERSION} on {self.bootstrap}")
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self._logs / "broker.out", "wb") as out:
            process = subprocess.Popen(
                config.broker_command(java, *self._jvm_paths(lib)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._kafka,
                start_new_session=True,
            )
        self._process = process
        try:
            write_pid(self._pid_file, process.pid)
            ready = self._wait_until_ready(process.pid, time.monotonic() + timeout_s)
        except BaseException:  # Ctrl-C included: never leave a half-started broker behind
            self._kill(process)
            raise
        if ready:
            return self._status(True, process.pid)
        code = process.poll()
        reason = f"did not answer within {timeout_s:.0f} s" if code is None else f"exited with code {code}"
        report = self._log_excerpt(log_offset)  # before the kill appends its shutdown lines
        self._kill(process)
        raise BrokerError(f"Kafka {reason} on {self.bootstrap}; from {self.log_file}:\n{report}")

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        terminate(process.pid, lambda: process.poll() is None, _KILL_TIMEOUT_S)
        self._pid_file.unlink(missing_ok=True)

    def _log_excerpt(self, offset: int) -> str:
        """What this launch logged (Kafka's log from ``offset`` on, then what the JVM printed), in short."""
        lines: list[str] = []
        with contextlib.suppress(OSError), open(self.log_file, "rb") as log:
            log.seek(offset)
            lines += log.read().decode(errors="replace").splitlines()
        with contextlib.suppress(OSError):
            lines += (self._logs / "broker.out").read_text(errors="replace").splitlines()
        return "\n".join(excerpt(lines)) or f"(nothing logged; see {self.log_file})"
