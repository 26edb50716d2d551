"""Pipelines for tests/integration/test_trust_boundaries.py: a pull request's shell stage that attacks the
worker running it, a Python task that looks at its own process, and a subscriber with a secret for forks.

The attack is built when the task process imports this module, aimed at the real places (the worker's
home, key, secrets directory, broker, intake, pid), which an attacker would have to guess. The task process
has none of the worker's settings in its environment, so the test names them again in HAMSTER_TEST_*
variables (not settings, not named like secrets: those a task process keeps).
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
HOME = str(Path(os.environ.get("HAMSTER_TEST_HOME", ".hamster")).resolve())
KEY = os.environ.get("HAMSTER_TEST_KEY_PATH", "")
SECRETS_DIR = os.environ.get("HAMSTER_TEST_VAULT", "")
KAFKA_PORT = int(os.environ.get("HAMSTER_TEST_BROKER", "127.0.0.1:9092").rsplit(":", 1)[1])
WEB_PORT = int(os.environ.get("HAMSTER_TEST_WEB_PORT", "8080"))
# The task process imports this module too: its parent is the worker.
WORKER_PIDS = sorted({os.getpid(), os.getppid()})


def _host_address() -> str:
    """The address this host reaches others from (a UDP "connect" sends nothing)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


TARGETS = [
    ("broker", "127.0.0.1", KAFKA_PORT),
    ("controller", "127.0.0.1", KAFKA_PORT + 1),
    ("intake", "127.0.0.1", WEB_PORT),
    ("broker-via-gateway", "10.0.2.2", KAFKA_PORT),  # slirp4netns's address of the host
    ("broker-via-host-address", _host_address(), KAFKA_PORT),
]
# Results are lines "RESULT <what>: <how>", made when the script runs: the script's own text (the log shows
# the command) never holds such a line, nor the canary it looks for.
PROBE = "\n".join(
    [
        "import socket",
        f"for name, host, port in {TARGETS!r}:",
        "    try:",
        "        socket.create_connection((host, port), timeout=5).close()",
        "        print('RESULT', name + ': REACHED')",
        "    except OSError as exc:",
        "        print('RESULT', name + ': unreachable (' + type(exc).__name__ + ')')",
    ]
)
q = shlex.quote
HALF = len(CANARY) // 2
ATTACK = f"""
R=RESULT; C="{CANARY[:HALF]}""{CANARY[HALF:]}"
echo "== env"; env
echo "$R granted: pypi=${{TWINE_PASSWORD:-absent}}"
if env | grep -q "$C"; then echo "$R env-canary: FOUND"; else echo "$R env-canary: absent"; fi
if env | grep '^HAMSTER_' | grep -qv '^HAMSTER_RUN_ID=\\|^HAMSTER_WORKSPACE='; then echo "$R settings: FOUND";
else echo "$R settings: absent"; fi
n=0; found=absent
for f in /proc/[0-9]*/environ; do
  n=$((n+1)); if grep -qa "$C" "$f" 2>/dev/null; then found=FOUND; fi
done
echo "$R proc: $n process(es) visible, canary $found"
for pid in {" ".join(str(p) for p in WORKER_PIDS)}; do
  if tr '\\0' '\\n' < /proc/$pid/environ 2>/dev/null | grep -q "$C";
  then echo "$R worker-environ-$pid: FOUND";
  else echo "$R worker-environ-$pid: unreadable"; fi
done
if cat {q(KEY)} 2>/dev/null; then echo "$R key: READ"; else echo "$R key: unreadable"; fi
if cat {q(HOME + "/hamster.db")} > /dev/null 2>&1; then echo "$R db: READ";
else echo "$R db: unreadable"; fi
if cat {q(SECRETS_DIR + "/DEPLOY_TOKEN")} 2>/dev/null; then echo "$R secrets-dir: READ";
else echo "$R secrets-dir: unreadable"; fi
echo "$R home holds: $(ls -A {q(HOME)} 2>&1 | tr '\\n' ' ')"
if echo x > {q(HOME + "/planted")} 2>/dev/null; then echo "$R home: WRITTEN";
else echo "$R home: read-only"; fi
if echo x > /usr/planted 2>/dev/null; then echo "$R usr: WRITTEN"; else echo "$R usr: read-only"; fi
echo "$R uid: $(id -u)"
python3 - <<'PY'
{PROBE}
PY
echo "$R attack: finished"
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
