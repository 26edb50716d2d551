"""The processes a benchmark run starts, and stops again: Kafka, Redis, Hamster, the baselines.

Every process is started by ``Processes.spawn`` with its output in the run's directory, and stopped by
``Processes.stop_all`` (SIGTERM, then SIGKILL after a timeout), so a failed run leaves nothing behind.
"""

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.payloads import SECRET

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def http_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.load(answer)
    except (OSError, ValueError):
        return None


def namespace() -> str:
    return "bench" + uuid.uuid4().hex[:8]


class Processes:
    """Child processes with their logs under ``home``; stopped in reverse order of starting."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.home / f"{name}.log", "ab") as log:  # the child keeps its own copy of the fd
            proc = subprocess.Popen(
                argv, env={**os.environ, **(env or {})}, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs[name] = proc
        return proc

    def check(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.home / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, name: str, timeout: float = 30.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash or the OOM killer would: the process gets no chance to clean up."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


def run_json(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> Any:
    """Run a helper process (the load generator, the Kafka-limit producer) and read its JSON answer."""
    done = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])}… failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
        )
    return json.loads(done.stdout)


def loadgen(url: str, mode: str, timeout: float = 300.0, **options: Any) -> dict[str, Any]:
    argv = [PYTHON, "-m", "bench.loadgen", url, mode, "--secret", SECRET]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return dict(run_json(argv, timeout))


def accepted_sends(answer: dict[str, Any]) -> dict[str, float]:
    """delivery id → send time, for the webhooks of a load generator's answer that the server accepted."""
    return {s[0]: s[1] for s in answer["samples"] if 200 <= s[3] < 300}


class Hamster:
    """`hamster web` and `hamster worker` processes in a namespace of their own."""

    def __init__(
        self,
        procs: Processes,
        bootstrap: str,
        home: Path,
        partitions: int,
        subscribers: str = "bench.pipeline",
    ) -> None:
        self.procs = procs
        self.namespace = namespace()
        self.home = home / self.namespace
        self.home.mkdir(parents=True)
        self.env = {
            "HAMSTER_KAFKA_BOOTSTRAP": bootstrap,
            "HAMSTER_HOME": str(self.home),
            "HAMSTER_NAMESPACE": self.namespace,
            "HAMSTER_SUBSCRIBERS": subscribers,
            "HAMSTER_WEBHOOK_SECRET": SECRET,
            "HAMSTER_PARTITIONS": str(partitions),
            # The bench measures how fast the intake stores, not its overload answer: the open loop's bursts
            # may hold more webhooks in flight than the default cap (64) lets in.
            "HAMSTER_INTAKE_MAX_IN_FLIGHT": "4096",
            # Per-request INFO lines are part of what the intake does; WARNING keeps the workers' logs small.
            "HAMSTER_LOG_LEVEL": "INFO",
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhooks/github"
        self.workers: dict[str, int] = {}

    def start_intake(self, timeout: float = 120.0) -> None:
        name = f"{self.namespace}-web"
        self.procs.spawn(name, [PYTHON, "-m", "hamster.cli", "web", "--port", str(self.port)], self.env)
        wait_until(lambda: self._ready(name), timeout, "the intake to be ready")

    def _ready(self, name: str) -> bool:
        self.procs.check(name)
        return http_status(f"http://127.0.0.1:{self.port}/readyz") == 200

    def start_worker(self, timeout: float = 180.0, expect: str = "bench-noop") -> str:
        """Start a worker and wait until it holds the subscribers table (``expect`` in it); its name."""
        name = self.spawn_worker()
        self.wait_worker(name, timeout, expect)
        return name

    def spawn_worker(self) -> str:
        """Start a worker without waiting for it; its name."""
        name = f"{self.namespace}-worker-{len(self.workers) + 1}"
        port = free_port()
        self.workers[name] = port
        self.procs.spawn(name, [PYTHON, "-m", "hamster.cli", "worker", "--web-port", str(port)], self.env)
        return name

    def wait_worker(self, name: str, timeout: float = 180.0, expect: str = "bench-noop") -> None:
        port = self.workers[name]

        def ready() -> bool:
            self.procs.check(name)
            view = http_json(f"http://127.0.0.1:{port}/hamster/subscribers/")
            return bool(view) and expect in view

        wait_until(ready, timeout, f"{name} to hold the subscribers table", every=0.5)

    def worker_named(self, pid: int) -> str | None:
        """The name of this namespace's running worker process ``pid``."""
        alive = {self.procs.procs[n].pid: n for n in self.workers if n in self.procs.procs}
        return alive.get(pid)

    def stop(self) -> None:
        """Stop this namespace's processes (SIGTERM, as a deploy does)."""
        for name in [n for n in self.procs.procs if n.startswith(self.namespace)]:
            self.procs.stop(name)


def _seconds(value: Any) -> float:
    """A timestamp a Celery task stored in Redis (redis-py answers bytes)."""
    return float(value.decode() if isinstance(value, bytes) else value)


class Celery:
    """The Celery baseline: a throwaway ``redis-server``, Celery workers (prefork) running
    ``bench.celery_app``, and the webhook view that hands each delivery to them (``bench.servers``)."""

    def __init__(self, procs: Processes, home: Path) -> None:
        self.procs = procs
        self.home = home
        redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.env = {"BENCH_REDIS_URL": self.redis_url}
        self.names: list[str] = []
        self._spawn(
            "redis",
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(home)],
        )  # fmt: skip
        import redis  # the bench extra: imported here so the rest of the harness loads without it

        self.client = redis.Redis.from_url(self.redis_url)

        def redis_up() -> bool:
            procs.check("redis")
            try:
                return bool(self.client.ping())
            except redis.RedisError:
                return False

        wait_until(redis_up, 30, "redis-server")
        self.url = ""

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.procs.spawn(name, argv, env)
        self.names.append(name)

    def start_worker(
        self,
        concurrency: int,
        options: Sequence[str] = (),
        env: dict[str, str] | None = None,
        loglevel: str = "WARNING",
    ) -> str:
        """Start a Celery worker of ``concurrency`` processes; its name. ``wait_worker`` needs INFO."""
        n = sum(1 for name in self.names if name.startswith("celery-worker"))
        name = "celery-worker" if n == 0 else f"celery-worker-{n + 1}"
        self._spawn(
            name,
            [PYTHON, "-m", "celery", "-A", "bench.celery_app", "worker", "--loglevel", loglevel,
             "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"bench{n + 1}@localhost", *options],
            {**self.env, **(env or {})},
        )  # fmt: skip
        return name

    def wait_worker(self, name: str, timeout: float = 60.0) -> None:
        """Wait for the worker to say it is ready (logged at INFO): it consumes from Redis."""

        def ready() -> bool:
            self.procs.check(name)
            return " ready." in self.procs.log_tail(name, lines=200)

        wait_until(ready, timeout, f"{name} to be ready")

    def start_web(self, pipeline: str = "chain") -> None:
        port = free_port()
        self._spawn(
            "celery-web",
            [PYTHON, "-m", "bench.servers", "celery-web", "--port", str(port), "--secret", SECRET,
             "--log", str(self.home / "celery-web.requests.log"), "--pipeline", pipeline],
            self.env,
        )  # fmt: skip

        def web_up() -> bool:
            self.procs.check("celery-web")
            return http_status(f"http://127.0.0.1:{port}/healthz") == 200

        wait_until(web_up, 60, "the Celery webhook view")
        self.url = f"http://127.0.0.1:{port}/webhooks/github"

    def finished(self, deliveries: list[str], timeout: float) -> dict[str, float]:
        """delivery id → when its tasks finished, once all of them have."""

        def all_done() -> dict[str, float] | None:
            for name in self.names:
                self.procs.check(name)
            values = self.client.hmget("bench:done", deliveries)
            return (
                None
                if any(v is None for v in values)
                else {d: _seconds(v) for d, v in zip(deliveries, values, strict=True)}
            )

        return dict(wait_until(all_done, timeout, f"{len(deliveries)} Celery chains", every=0.25))

    def spans(self, deliveries: list[str]) -> list[tuple[float, float]]:
        """(start, end) of each slow task that ran for these deliveries."""
        values = self.client.hmget("bench:spans", deliveries)
        found = [v.decode() if isinstance(v, bytes) else v for v in values if v is not None]
        return [(float(a), float(b)) for a, b in (str(v).split() for v in found)]

    def stop(self) -> None:
        for name in reversed(self.names):
            self.procs.stop(name)
        self.client.close()
