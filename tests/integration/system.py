"""A running Hamster for tests: the real `hamster web` and `hamster worker` processes on the real broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hamster.intake.signatures import signature_for
from hamster.kafka_access import KafkaAccess
from hamster.projection.queries import list_runs
from hamster.projection.sql import make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]
HAMSTER = [sys.executable, "-m", "hamster.cli.__main__"]
SECRET = "test-webhook-secret-7f3a9c2e"
# Every System's dashboard signs in with these (HAMSTER_API_TOKENS): a reader and an operator.
READER_TOKEN = "reader-token-3b9e0c71d2"
OPERATOR_TOKEN = "operator-token-84f1a6e5c0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kafka_env(kafka: KafkaAccess) -> dict[str, str]:
    """The HAMSTER_KAFKA_* variables that make a process connect as ``kafka`` does."""
    env = {"HAMSTER_KAFKA_BOOTSTRAP": kafka.bootstrap, "HAMSTER_KAFKA_SECURITY_PROTOCOL": kafka.protocol}
    if kafka.sasl:
        env |= {
            "HAMSTER_KAFKA_SASL_MECHANISM": kafka.mechanism,
            "HAMSTER_KAFKA_SASL_USERNAME": kafka.username or "",
            "HAMSTER_KAFKA_SASL_PASSWORD": kafka.password or "",
        }
    for name, path in (("CAFILE", kafka.cafile), ("CERTFILE", kafka.certfile), ("KEYFILE", kafka.keyfile)):
        if path is not None:
            env[f"HAMSTER_KAFKA_SSL_{name}"] = str(path)
    return env


def wait_until(check: Callable[[], Any], timeout: float = 60.0, every: float = 0.25, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(every)


class System:
    """Intake plus workers in one namespace of their own, so test modules never see each other's runs."""

    def __init__(
        self,
        bootstrap: str | KafkaAccess,
        home: Path,
        subscribers: str,
        partitions: int = 4,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``bootstrap``: the broker, or how to reach it securely; ``env``: more HAMSTER_* settings."""
        self.kafka = bootstrap if isinstance(bootstrap, KafkaAccess) else KafkaAccess(bootstrap)
        self.home = home
        self.marks = home / "marks.txt"
        self.namespace = "t" + uuid.uuid4().hex[:10]
        self.env = {
            **os.environ,
            **kafka_env(self.kafka),
            "HAMSTER_HOME": str(home),
            "HAMSTER_NAMESPACE": self.namespace,
            "HAMSTER_SUBSCRIBERS": subscribers,
            "HAMSTER_WEBHOOK_SECRET": SECRET,
            "HAMSTER_API_TOKENS": f"reader:read:{READER_TOKEN},operator:operate:{OPERATOR_TOKEN}",
            "HAMSTER_PARTITIONS": str(partitions),
            "HAMSTER_TEST_MARKS": str(self.marks),
            **(env or {}),
        }
        self.intake_port = free_port()
        self.url = f"http://127.0.0.1:{self.intake_port}/webhooks/github"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.worker_ports: dict[str, int] = {}
        self.engine = make_engine(f"sqlite:///{home / 'hamster.db'}")

    @contextmanager
    def running(self, subscribers: set[str], workers: int = 1) -> Iterator[System]:
        """The intake and ``workers`` workers (worker-1…) ready with ``subscribers``; all stopped after."""
        try:
            self.start_intake()
            for n in range(1, workers + 1):
                self.start_worker(f"worker-{n}")
            if workers:
                self.wait_workers_ready(subscribers)
            yield self
        finally:
            self.stop()

    # processes
    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.home / f"{name}.log", "ab") as log:  # the child keeps its own copy of the fd
            proc = subprocess.Popen([*HAMSTER, *args], env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)
        self.procs[name] = proc
        return proc

    def start_intake(self) -> None:
        self._spawn("web", "web", "--port", str(self.intake_port))
        wait_until(
            lambda: self._get(f"http://127.0.0.1:{self.intake_port}/readyz") == 200, 60, what="intake ready"
        )

    def start_worker(self, name: str) -> None:
        port = free_port()
        self.worker_ports[name] = port
        self._spawn(name, "worker", "--web-port", str(port))

    def wait_workers_ready(self, expected: set[str], timeout: float = 90.0) -> None:
        for name in self.worker_ports:

            def holds(n: str = name) -> bool:
                return expected <= set(self.worker_view(n))

            wait_until(
                holds,
                timeout,
                0.5,
                what=f"{name} to hold the subscribers table",
            )

    def worker_view(self, name: str) -> dict[str, Any]:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.worker_ports[name]}/hamster/subscribers/", timeout=2
            ) as answer:
                return dict(json.load(answer))
        except (OSError, ValueError):
            return {}

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, name: str | None = None, sig: int = signal.SIGTERM) -> None:
        for key in [name] if name else list(self.procs):
            proc = self.procs.pop(key)
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to commit, flush or say goodbye."""
        self.stop(name, signal.SIGKILL)

    # HTTP
    @staticmethod
    def _get(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def post(
        self, event: str, payload: dict[str, Any] | bytes, delivery: str | None = None
    ) -> tuple[int, str]:
        """POST a webhook signed as GitHub signs it; returns (status, delivery id)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        delivery = delivery or str(uuid.uuid4())
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery,
                "X-Hub-Signature-256": signature_for(body, SECRET.encode()),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status), delivery
        except urllib.error.HTTPError as exc:
            return exc.code, delivery

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.intake_port}"

    def fetch(self, path: str, token: str | None = READER_TOKEN) -> tuple[int, str]:
        """GET a dashboard page or API path with ``token`` (the reader's by default): (status, text)."""
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status), answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    # what happened
    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        return list_runs(self.engine, **filters)

    def runs_for(self, delivery: str) -> list[dict[str, Any]]:
        return [r for r in self.runs() if r["delivery_id"] == delivery]

    def wait_finished(self, delivery: str, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            runs = self.runs_for(delivery)
            finished = [r for r in runs if r["status"] in {"succeeded", "failed", "cancelled"}]
            return runs if len(finished) >= count else None

        return list(wait_until(done, timeout, what=f"{count} finished run(s) for delivery {delivery}"))

    def marks_list(self) -> list[tuple[str, str, int]]:
        if not self.marks.exists():
            return []
        return [(r, s, int(a)) for r, s, a in (line.split() for line in self.marks.read_text().splitlines())]

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run_cli(self.env, *args, timeout=timeout)

    @staticmethod
    def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`hamster <args>` with ``env`` (another namespace, say), as a user runs it."""
        return subprocess.run(
            [*HAMSTER, *args],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
