"""Pipelines for tests/integration/test_trust_boundaries.py: a pull request's shell stage that attacks the
worker running it, a Python task that looks at its own process, and a subscriber with a secret for forks.

The attack is built when the worker imports this module, from what the worker knows (its home, its key,
the broker's port, its own pid), so it aims at the real places: an attacker would have to guess them.
"""

from __future__ import annotations

import os
import shlex
import socket
from pathlib import Path
from typing import Any

from hamster import Secret, Subscriber, task
from hamster.tasks import comment, shell

CANARY = os.environ.get("HAMSTER_TEST_CANARY", "no-canary-set")
HOME = str(Path(os.environ.get("HAMSTER_HOME", ".hamster")).resolve())
KEY = os.environ.get("HAMSTER_GITHUB_KEY", "")
SECRETS_DIR = os.environ.get("HAMSTER_SECRETS_DIR", "")
KAFKA_PORT = int(os.environ.get("HAMSTER_KAFKA_BOOTSTRAP", "127.0.0.1:9092").rsplit(":", 1)[1])
WEB_PORT = int(os.environ.get("HAMSTER_TEST_WEB_PORT", "8080"))
# The task process imports this module too: its parent is the worker.
WORKER_PIDS = sorted({os.getpid(), os.getppid()})


def _host_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


TARGETS = [
    ("broker", "127.0.0.1", KAFKA_PORT),
    ("controller", "127.0.0.1", KAFKA_PORT + 1),
    ("intake", "127.0.0.1", WEB_PORT),
    ("broker-via-gateway", "10.0.2.2", KAFKA_PORT),  # slirp4netns's address of the host
    ("broker-via-host-address", _host_address(), KAFKA_PORT),
]
PROBE = "\n".join(
    [
        "import socket",
        f"for name, host, port in {TARGETS!r}:",
        "    try:",
        "        socket.create_connection((host, port), timeout=5).close()",
        "        print(f'{name}: REACHED')",
        "    except OSError as exc:",
        "        print(f'{name}: unreachable ({type(exc).__name__})')",
    ]
)
q = shlex.quote
ATTACK = f"""
echo "== env"; env
echo "granted: pypi=${{TWINE_PASSWORD:-absent}}"
if env | grep -q {q(CANARY)}; then echo "env-canary: FOUND"; else echo "env-canary: absent"; fi
if env | grep '^HAMSTER_' | grep -qv '^HAMSTER_RUN_ID=\\|^HAMSTER_WORKSPACE='; then echo "settings: FOUND";
else echo "settings: absent"; fi
n=0; found=absent
for f in /proc/[0-9]*/environ; do
  n=$((n+1)); if grep -qa {q(CANARY)} "$f" 2>/dev/null; then found=FOUND; fi
done
echo "proc: $n process(es) visible, canary $found"
for pid in {" ".join(str(p) for p in WORKER_PIDS)}; do
  if tr '\\0' '\\n' < /proc/$pid/environ 2>/dev/null | grep -q {q(CANARY)}; then echo "worker-environ: FOUND";
  else echo "worker-environ: unreadable"; fi
done
if cat {q(KEY)} 2>/dev/null; then echo "key: READ"; else echo "key: unreadable"; fi
if cat {q(HOME + "/hamster.db")} > /dev/null 2>&1; then echo "db: READ"; else echo "db: unreadable"; fi
if cat {q(SECRETS_DIR + "/DEPLOY_TOKEN")} 2>/dev/null; then echo "secrets-dir: READ";
else echo "secrets-dir: unreadable"; fi
echo "home holds: $(ls -A {q(HOME)} 2>&1 | tr '\\n' ' ')"
if echo x > {q(HOME + "/planted")} 2>/dev/null; then echo "home: WRITTEN"; else echo "home: read-only"; fi
if echo x > /usr/planted 2>/dev/null; then echo "usr: WRITTEN"; else echo "usr: read-only"; fi
echo "uid: $(id -u)"
python3 - <<'PY'
{PROBE}
PY
echo done > attack-ran.txt
"""

attack = shell(ATTACK, name="attack", env={"TWINE_PASSWORD": Secret("PYPI_TOKEN")}, timeout=120)
host_probe = shell(f"python3 - <<'PY'\n{PROBE}\nPY", name="host_probe", network="host", timeout=60)
none_probe = shell(f"python3 - <<'PY'\n{PROBE}\nPY", name="none_probe", network="none", timeout=60)


@task(timeout=60)
def peek(ctx: Any) -> dict[str, Any]:
    """A Python task looks at its own process: which HAMSTER_* variables, and its /proc environ."""
    own = Path("/proc/self/environ").read_bytes().decode(errors="replace")
    return {
        "hamster_variables": sorted(k for k in os.environ if k.startswith("HAMSTER_")),
        "environ_has_secret_variable": "HAMSTER_SECRET_PYPI_TOKEN" in own or "HAMSTER_API_TOKEN" in own,
        "granted": sorted(ctx.secrets),
        "trusted": ctx.trusted,
    }


publish = shell(
    'echo "pypi=${TWINE_PASSWORD:-absent}"', name="publish", env={"TWINE_PASSWORD": Secret("PYPI_TOKEN")}
)


@task(timeout=60)
def uses_secret(ctx: Any) -> dict[str, Any]:
    token = ctx.secrets.get("PYPI_TOKEN")
    print("the token is", token)  # masked in the log
    return {"has_secret": token is not None, "trusted": ctx.trusted, "echo": token}  # masked in the output


SUBSCRIBERS = [
    Subscriber(
        "attack",
        events=["pull_request"],
        repos=["trust/attack"],
        pipeline=[attack, peek],
        secrets=["PYPI_TOKEN"],
    ),
    Subscriber("probes", events=["pull_request"], repos=["trust/probes"], pipeline=[host_probe, none_probe]),
    Subscriber(
        "forks",
        events=["pull_request"],
        repos=["trust/forks"],
        pipeline=[publish, uses_secret, comment("tested {event.sha:.7}", name="thanks")],
        secrets=["PYPI_TOKEN"],
    ),
    Subscriber(
        "trusting",
        events=["pull_request"],
        repos=["trust/trusting"],
        pipeline=[uses_secret],
        secrets=["PYPI_TOKEN"],
        trust_forks=True,
    ),
]
