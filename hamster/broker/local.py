"""``LocalBroker``: start, stop and inspect a local Kafka (one node, or a cluster of several) under ``home``.

Theory of operation. ``start`` takes a lock, returns at once if every node's pid file names a live node and
the cluster answers, otherwise makes sure the jars are cached, writes each missing node's config, formats its
storage on its very first start, launches the missing JVMs (each in a session of its own, so it outlives the
command and ignores the terminal's Ctrl-C) and waits until every node answers a metadata request and, for a
cluster, every node is registered as a broker. A launch that fails or times out is killed and reported with
the first error and the last lines of the failing node's log. ``stop`` sends SIGTERM to every node at once
and waits; SIGKILL only after the timeout.

A node of a running cluster that died (the fault soak SIGKILLs one) is started again by ``start``, alone:
the other nodes keep running.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from hamster.broker import config, jars, probe
from hamster.broker.log_excerpt import excerpt
from hamster.broker.process import is_alive, locked, read_pid, terminate_all, write_pid
from hamster.errors import BrokerError, ConfigurationError
from hamster.kafka_access import KafkaAccess
from hamster.settings import Settings

_FORMAT_TIMEOUT_S = 120.0
_KILL_TIMEOUT_S = 10.0
_PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class NodeStatus:
    """One node of the broker, as ``hamster broker status`` reports it."""

    node_id: int
    running: bool  # the process is alive and answers metadata requests
    pid: int | None  # set whenever the process is alive, even if it does not answer (yet)
    bootstrap: str  # its own host:port
    data_dir: Path
    log_file: Path


@dataclass(frozen=True)
class BrokerStatus:
    """What ``hamster broker status`` reports: the whole broker, and each of its nodes."""

    running: bool  # every node is alive and answers metadata requests
    pid: int | None  # the first node's pid, whenever that process is alive
    bootstrap: str  # every node's host:port, comma-separated
    data_dir: Path
    log_file: Path  # the first node's log
    nodes: tuple[NodeStatus, ...] = field(default=())


class _Node:
    """One JVM: its ports and files, and its process once launched by this object."""

    def __init__(
        self, node_id: int, host: str, port: int, kafka: Path, logs: Path, access: KafkaAccess
    ) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.bootstrap = access.bootstrap
        self.access = access  # how clients reach this node alone
        self.kafka = kafka  # absolute, like ``logs``: the pid check compares command lines
        self.logs = logs
        self.properties = kafka / "server.properties"
        self.pid_file = kafka / "broker.pid"
        self.log_file = logs / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def live_pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid is not None and self.alive(pid) else None

    def alive(self, pid: int) -> bool:
        if self.process is not None and self.process.pid == pid:
            return self.process.poll() is None  # our own child: poll() also reaps it
        return is_alive(pid, marker=str(self.properties))

    def cluster_id(self) -> str | None:
        """The id the data dir was formatted with: another broker on our port has another one."""
        try:
            text = (self.kafka / "data" / "meta.properties").read_text()
        except OSError:
            return None
        found = re.search(r"^cluster\.id=(\S+)$", text, re.MULTILINE)
        return found.group(1) if found else None

    def answers(self, timeout_s: float, brokers: int = 1) -> bool:
        """Does this node answer as one of our cluster, knowing at least ``brokers`` brokers?"""
        cluster_id = self.cluster_id()
        return cluster_id is not None and probe.node_answers(
            self.access, self.host, self.port, cluster_id, timeout_s, brokers=brokers
        )

    def jvm_paths(self, lib: Path) -> tuple[Path, Path, Path, Path]:
        return lib, self.properties, self.kafka / "log4j2.properties", self.logs

    def status(self, running: bool, pid: int | None) -> NodeStatus:
        return NodeStatus(self.node_id, running, pid, self.bootstrap, self.kafka, self.log_file)


class LocalBroker:
    """A local Kafka for development and tests: one node, or ``nodes`` nodes forming one cluster.

    Files of one node, under ``settings.home``::

        kafka/server.properties   written on every start
        kafka/log4j2.properties   written on every start
        kafka/cluster.id          made once
        kafka/keystore.pem        SASL_SSL only: the listener's key and certificates (mode 600)
        kafka/broker-password     SASL_SSL only: the nodes' own SCRAM login, made once (mode 600)
        kafka/data/               log.dirs, formatted on the first start (meta.properties)
        kafka/broker.pid          while it runs
        kafka/broker.lock         held by start and stop
        logs/server.log           Kafka's log (size-capped, rolled to server.log.1…)
        logs/broker.out           the JVM's stdout and stderr

    A cluster has ``cluster.id``, ``broker-password`` and ``broker.lock`` in ``kafka/`` and the rest per
    node: ``kafka/node-<id>/`` and ``logs/node-<id>/``. Node ``<id>`` listens on the bootstrap's ``<id>``-th
    port if it lists one per node, else on its first port + 2 * (``<id>`` - 1); its controller on the port
    above. ``nodes`` left out means what the home holds (one node for a new home); ``stop`` and ``status``
    never need it.
    """

    def __init__(
        self,
        settings: Settings,
        progress: Callable[[str], None] | None = None,
        nodes: int | None = None,
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
        host = config.listen_host(settings.kafka_host)
        config.controller_port(settings.kafka_port)  # refuse an impossible port now rather than at launch
        self.data_dir = settings.home / "kafka"
        self.log_dir = settings.home / "logs"
        self._progress = progress or (lambda _message: None)
        # Absolute paths for the JVM (it runs in the kafka dir) and for the pid check (it compares command
        # lines), whatever the working directory of a later command.
        self._kafka = self.data_dir.absolute()
        self._logs = self.log_dir.absolute()
        self._asked = nodes
        self._held = self._nodes_held()
        count = nodes or self._held or 1
        if count == 1:
            self.bootstrap = f"{settings.kafka_host}:{settings.kafka_port}"
            access = replace(settings.kafka, bootstrap=self.bootstrap)
            self._nodes = [_Node(1, host, settings.kafka_port, self._kafka, self._logs, access)]
        else:
            host_name = settings.kafka_host
            listed = [int(server.rsplit(":", 1)[1]) for server in settings.kafka_bootstrap.split(",")]
            ports = config.node_ports(settings.kafka_port, count, listed)
            self._nodes = [
                _Node(
                    n,
                    host,
                    p,
                    self._kafka / f"node-{n}",
                    self._logs / f"node-{n}",
                    replace(settings.kafka, bootstrap=f"{host_name}:{p}"),
                )
                for n, p in enumerate(ports, start=1)
            ]
            self.bootstrap = ",".join(node.bootstrap for node in self._nodes)
        self.log_file = self._nodes[0].log_file

    def status(self) -> BrokerStatus:
        """Whether each node runs and answers, from its pid file and a metadata request."""
        nodes = []
        for node in self._nodes:
            pid = node.live_pid()
            nodes.append(node.status(pid is not None and node.answers(timeout_s=5.0), pid))
        return self._status(tuple(nodes))

    def start(self, timeout_s: float = 90.0) -> BrokerStatus:
        """Start every node not running; return once all answer (and, for a cluster, are registered).

        ``timeout_s`` bounds the wait for the JVMs to answer, not the one-off jar download before it.
        """
        self._kafka.mkdir(parents=True, exist_ok=True)
        with locked(self._kafka / "broker.lock"):
            self._check_layout()
            deadline = time.monotonic() + timeout_s
            live = {node.node_id: node.live_pid() for node in self._nodes}
            for node in self._nodes:
                pid = live[node.node_id]
                if pid is not None and not self._wait_until_ready(node, pid, deadline, brokers=1):
                    raise BrokerError(
                        f"broker pid {pid} runs but does not answer on {node.bootstrap}: stop it with "
                        f"`hamster broker stop` and start again (log: {node.log_file})"
                    )
            missing = [node for node in self._nodes if live[node.node_id] is None]
            if not missing:
                return self._running(live)
            for node in missing:
                node.pid_file.unlink(missing_ok=True)  # stale: its process is gone
            java = jars.find_java()
            lib = jars.ensure_jars(self._progress)
            cluster_id = self._cluster_id()
            if self._secure is not None:
                self._secure = self._kept_broker_password(self._secure)
            for node in missing:
                self._write_config(node)
            # Each format is a JVM of its own: a cluster's first start formats its nodes side by side.
            with ThreadPoolExecutor(max_workers=len(missing)) as pool:
                formats = [pool.submit(self._format_once, node, java, lib, cluster_id) for node in missing]
            for done in formats:
                done.result()  # the first failure, raised here
            return self._launch(missing, live, java, lib, timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Stop every node cleanly; return the first pid that was stopped, or None if none was running."""
        stopped = self.stop_nodes(timeout_s)
        return stopped[0] if stopped else None

    def stop_nodes(self, timeout_s: float = 30.0) -> list[int]:
        """Stop every node cleanly, all at once; return the pids that were stopped."""
        self._kafka.mkdir(parents=True, exist_ok=True)
        with locked(self._kafka / "broker.lock"):
            running = {pid: node for node in self._nodes if (pid := node.live_pid()) is not None}
            killed = terminate_all({pid: _alive_check(node, pid) for pid, node in running.items()}, timeout_s)
            for pid in killed:
                self._progress(f"broker pid {pid} did not stop within {timeout_s:.0f} s: killed it")
            survivors = [pid for pid, node in running.items() if node.alive(pid)]
            if survivors:
                raise BrokerError(f"broker pid {survivors[0]} survived SIGKILL")
            for node in self._nodes:
                node.pid_file.unlink(missing_ok=True)
            return list(running)

    # -- internals -------------------------------------------------------------------------------------------

    def _nodes_held(self) -> int:
        """How many nodes the home holds: a cluster's node directories, else 0 (one node, or nothing yet)."""
        return sum(1 for _ in self._kafka.glob("node-*/")) if (self._kafka / "node-1").is_dir() else 0

    def _check_layout(self) -> None:
        """Refuse to turn a home's single node into a cluster, or a cluster into another size."""
        single = (self._kafka / "data").is_dir()
        held = "one node" if single else f"a cluster of {self._held} nodes" if self._held else None
        if held is None or self._asked is None:
            return
        if (single and self._asked > 1) or (self._held and self._asked != self._held):
            raise BrokerError(
                f"{self.data_dir} holds {held}, not {self._asked}: stop it and use another HAMSTER_HOME "
                f"for a broker of {self._asked} node{'s' if self._asked != 1 else ''}"
            )

    def _status(self, nodes: tuple[NodeStatus, ...]) -> BrokerStatus:
        first = nodes[0]
        return BrokerStatus(
            all(n.running for n in nodes), first.pid, self.bootstrap, self.data_dir, self.log_file, nodes
        )

    def _kept_broker_password(self, secure: config.SecureListener) -> config.SecureListener:
        """The nodes of a cluster log in to each other as the broker user, whose SCRAM password went into
        their storage when it was formatted: the first one is kept (readable by us only) for nodes
        started later, such as one started again after it died."""
        kept = self._kafka / "broker-password"
        if kept.exists():
            return replace(secure, broker_password=kept.read_text(encoding="utf-8").strip())
        kept.touch()
        kept.chmod(0o600)
        kept.write_text(secure.broker_password + "\n", encoding="utf-8")
        return secure

    def _running(self, pids: dict[int, int | None]) -> BrokerStatus:
        return self._status(tuple(node.status(True, pids[node.node_id]) for node in self._nodes))

    def _cluster_id(self) -> str:
        """The cluster's id: the one its nodes were formatted with, made once."""
        id_file = self._kafka / "cluster.id"
        cluster_id = id_file.read_text().strip() if id_file.exists() else ""
        if not cluster_id:
            cluster_id = config.new_cluster_id()
            id_file.write_text(cluster_id + "\n")
        return cluster_id

    def _wait_until_ready(self, node: _Node, pid: int, deadline: float, brokers: int) -> bool:
        """Until ``deadline``: does ``node`` answer, in a cluster of at least ``brokers`` brokers?"""
        while node.alive(pid):
            # A local broker answers in milliseconds; a short probe notices a dead JVM sooner.
            if node.answers(_PROBE_TIMEOUT_S, brokers=brokers):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
        return False

    def _write_config(self, node: _Node) -> None:
        node.kafka.mkdir(parents=True, exist_ok=True)
        node.logs.mkdir(parents=True, exist_ok=True)
        ports = [n.port for n in self._nodes] if len(self._nodes) > 1 else []
        keystore = node.kafka / "keystore.pem"
        if self._secure is not None:
            # Kafka's PEM keystore file: the private key, then the certificate chain; readable by us only.
            keystore.touch()
            keystore.chmod(0o600)
            keystore.write_text(
                self._secure.keyfile.read_text() + self._secure.certfile.read_text(), encoding="utf-8"
            )
        properties = config.server_config(
            node.host,
            node.port,
            node.kafka / "data",
            node_id=node.node_id,
            cluster_ports=ports,
            secure=self._secure,
            keystore=keystore,
        )
        node.properties.touch()
        node.properties.chmod(0o600)  # the broker's own SASL password is in it
        node.properties.write_text(config.render_properties(properties), encoding="utf-8")
        (node.kafka / "log4j2.properties").write_text(
            jars.package_file("log4j2.properties"), encoding="utf-8"
        )

    def _format_once(self, node: _Node, java: str, lib: Path, cluster_id: str) -> None:
        """Format the data dir on the first start only (meta.properties marks it; a second format fails)."""
        if (node.kafka / "data" / "meta.properties").exists():
            return
        self._progress(f"formatting Kafka storage in {node.kafka / 'data'} (first start)")
        scram = config.scram_arguments(self._secure) if self._secure is not None else []
        command = config.format_command(java, *node.jvm_paths(lib), cluster_id, scram)
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_FORMAT_TIMEOUT_S,
                cwd=node.kafka,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerError(f"formatting Kafka storage took over {_FORMAT_TIMEOUT_S:.0f} s") from exc
        if result.returncode != 0:
            output = excerpt((result.stdout + result.stderr).strip().splitlines())
            raise BrokerError("formatting Kafka storage failed:\n" + "\n".join(output))

    def _launch(
        self, missing: list[_Node], live: dict[int, int | None], java: str, lib: Path, timeout_s: float
    ) -> BrokerStatus:
        """Launch ``missing`` together (a cluster's controllers need each other to elect a leader); wait."""
        where = (
            self.bootstrap if len(missing) == len(self._nodes) else ", ".join(n.bootstrap for n in missing)
        )
        self._progress(f"starting Kafka {config.KAFKA_VERSION} on {where}")
        offsets = {n.node_id: n.log_file.stat().st_size if n.log_file.exists() else 0 for n in missing}
        pids = dict(live)
        try:
            for node in missing:
                with open(node.logs / "broker.out", "wb") as out:
                    node.process = subprocess.Popen(
                        config.broker_command(java, *node.jvm_paths(lib)),
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        cwd=node.kafka,
                        start_new_session=True,
                    )
                write_pid(node.pid_file, node.process.pid)
                pids[node.node_id] = node.process.pid
            deadline = time.monotonic() + timeout_s
            failed = next(
                (
                    node
                    for node in self._nodes
                    if not self._wait_until_ready(node, pids[node.node_id] or 0, deadline, len(self._nodes))
                ),
                None,
            )
        except BaseException:  # Ctrl-C included: never leave a half-started broker behind
            self._kill(missing)
            raise
        if failed is None:
            return self._running(pids)
        code = failed.process.poll() if failed.process is not None else None
        reason = f"did not answer within {timeout_s:.0f} s" if code is None else f"exited with code {code}"
        report = self._log_excerpt(failed, offsets.get(failed.node_id, 0))  # before the kill appends
        self._kill(missing)
        name = "Kafka" if len(self._nodes) == 1 else f"Kafka node {failed.node_id}"
        raise BrokerError(f"{name} {reason} on {failed.bootstrap}; from {failed.log_file}:\n{report}")

    def _kill(self, nodes: list[_Node]) -> None:
        launched = {n.process.pid: n for n in nodes if n.process is not None}
        terminate_all({pid: _alive_check(node, pid) for pid, node in launched.items()}, _KILL_TIMEOUT_S)
        for node in nodes:
            node.pid_file.unlink(missing_ok=True)

    def _log_excerpt(self, node: _Node, offset: int) -> str:
        """What this launch logged (Kafka's log from ``offset`` on, then what the JVM printed), in short."""
        lines: list[str] = []
        with contextlib.suppress(OSError), open(node.log_file, "rb") as log:
            log.seek(offset)
            lines += log.read().decode(errors="replace").splitlines()
        with contextlib.suppress(OSError):
            lines += (node.logs / "broker.out").read_text(errors="replace").splitlines()
        return "\n".join(excerpt(lines)) or f"(nothing logged; see {node.log_file})"


def _alive_check(node: _Node, pid: int) -> Callable[[], bool]:
    return lambda: node.alive(pid)
