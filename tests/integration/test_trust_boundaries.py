"""Trust boundaries, tried as an attacker would: real broker, real `hamster web` and worker, the fake GitHub.

A pull request's shell stage prints its environment, reads every /proc/*/environ it can see and the
worker's, the deploy key, HAMSTER_HOME and the secrets directory, writes outside its workspace, and
connects to the broker, its controller and the intake: none of it succeeds. A fork's pull request gets no
secrets and no GitHub writes until a person with write permission comments /ok-to-test (a reader's comment
starts nothing). Finally everything the runs wrote (topics, files and logs under HAMSTER_HOME, the
database, the dashboard's pages) is searched for every secret value.
"""

from __future__ import annotations

import secrets
import urllib.request
from typing import Any

import pytest

from hamster.execution import sandbox
from hamster.settings import variables
from tests.fakegithub import FakeGitHub
from tests.integration import secret_scan
from tests.integration.fault_tools import run_log
from tests.integration.system import SECRET, System, wait_until
from tests.samples import from_fork, load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PYPI_TOKEN = "pypi-" + secrets.token_hex(16)  # granted to the subscribers (HAMSTER_SECRET_PYPI_TOKEN)
DEPLOY_TOKEN = "deploy-" + secrets.token_hex(16)  # in HAMSTER_SECRETS_DIR, granted to nobody
API_TOKEN = "api-" + secrets.token_hex(16)
WEBHOOK_SECRET = "whsec-" + secrets.token_hex(16)
GITHUB_TOKEN = "ghp_" + secrets.token_hex(18)
KEY_BODY = secrets.token_hex(24)
CANARY = "canary-" + secrets.token_hex(8)  # not a secret: found only where the worker's environment is read
SECRETS = {
    "granted secret": PYPI_TOKEN,
    "secret of the source": DEPLOY_TOKEN,
    "API token": API_TOKEN,
    "webhook secret": WEBHOOK_SECRET,
    "GitHub token": GITHUB_TOKEN,
    "deploy key": KEY_BODY,
}
SUBSCRIBERS = {"attack", "probes", "forks", "trusting"}


@pytest.fixture(scope="module")
def fake():
    with FakeGitHub(token=GITHUB_TOKEN) as server:
        server.repo("trust/forks").permissions.update(octocat="write", mallory="read")
        yield server


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake):
    home = tmp_path_factory.mktemp("trust")
    outside = tmp_path_factory.mktemp("trust-keys")  # the key and the secrets, outside HAMSTER_HOME
    key = outside / "github.key"
    key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o600)
    (outside / "secrets").mkdir()
    (outside / "secrets" / "DEPLOY_TOKEN").write_text(DEPLOY_TOKEN + "\n")
    hamster = System(kafka_bootstrap, home, "tests.pipelines.trust")
    hamster.env.update(
        {
            "HAMSTER_WEBHOOK_SECRET": f"{SECRET},{WEBHOOK_SECRET}",
            "HAMSTER_API_TOKEN": API_TOKEN,
            "HAMSTER_GITHUB_API_URL": fake.url,
            "HAMSTER_GITHUB_API_TOKEN": GITHUB_TOKEN,
            "HAMSTER_GITHUB_WRITE_INTERVAL_S": "0.05",
            "HAMSTER_GITHUB_KEY": str(key),
            "HAMSTER_SECRET_PYPI_TOKEN": PYPI_TOKEN,
            "HAMSTER_SECRETS_DIR": str(outside / "secrets"),
            "HAMSTER_TEST_CANARY": CANARY,
            "HAMSTER_TEST_WEB_PORT": str(hamster.intake_port),
            # Where the attack aims (tests/pipelines/trust.py): the task process has no settings to read.
            "HAMSTER_TEST_HOME": str(home),
            "HAMSTER_TEST_KEY_PATH": str(key),
            "HAMSTER_TEST_VAULT": str(outside / "secrets"),
            "HAMSTER_TEST_BROKER": kafka_bootstrap,
            "HAMSTER_LOG_LEVEL": "DEBUG",
            # The pages searched at the end are read without a login (a setting of the dashboard's login,
            # ignored where there is none).
            "HAMSTER_DASHBOARD_PUBLIC": "true",
        }
    )
    with hamster.running(SUBSCRIBERS, workers=1):
        yield hamster


def finished_run(system: System, repo: str, event: str = "pull_request", payload: Any = None) -> str:
    """Post a pull request to ``repo`` and wait for its run to end; its run id."""
    status, delivery = system.post(
        event, payload or with_repo(load("pull_request", "opened.payload.json"), repo)
    )
    assert status == 202
    [run] = system.wait_finished(delivery, timeout=180)
    return str(run["run_id"])


@pytest.fixture(scope="module")
def attack_run(system: System) -> str:
    """The run of a pull request to the attack subscriber, ended; its run id."""
    return finished_run(system, "trust/attack")


@pytest.fixture(scope="module")
def probe_run(system: System) -> str:
    """The run of a pull request to the probes subscriber, ended; its run id."""
    return finished_run(system, "trust/probes")


@pytest.fixture(scope="module")
def trusting_run(system: System) -> str:
    """The run of a fork's pull request to the subscriber that trusts forks, ended; its run id."""
    payload = from_fork(with_repo(load("pull_request", "opened.payload.json"), "trust/trusting"), "mallory")
    return finished_run(system, "trust/trusting", payload=payload)


def log_of(system: System, run_id: str) -> str:
    done = system.cli("runs", "logs", run_id)
    assert done.returncode == 0, done.stderr
    return done.stdout


def outputs(system: System, run_id: str) -> dict[str, Any]:
    return {r.stage: r.output for r in run_log(system, run_id) if r.type == "StageSucceeded"}


def requested(system: System, run_id: str) -> Any:
    [first] = [r for r in run_log(system, run_id) if r.type == "RunRequested"]
    return first


def test_the_sandbox_runs_here():
    """This machine runs bubblewrap and slirp4netns (make test-deps installs them): the tests below attack
    a real sandbox, not a refusal."""
    assert sandbox.unavailable() is None and sandbox.egress_unavailable() is None


def results(text: str) -> dict[str, str]:
    """The "RESULT what: how" lines the probes printed (the command itself, shown in the log, has none)."""
    found = [line.removeprefix("RESULT ").split(": ", 1) for line in text.splitlines()]
    return {what: how for what, how in (f for f in found if len(f) == 2) if what} if text else {}


def test_a_pull_requests_shell_stage_reaches_nothing_of_the_worker(system: System, attack_run: str):
    """The attack stage (tests/pipelines/trust.py) finds no setting or worker variable in its environment,
    no worker process in /proc, no key, no database, no secrets directory, a HAMSTER_HOME that holds only the
    workspaces, nothing writable outside its workspace, and no loopback service: broker, controller or
    intake, directly, through slirp's gateway or the host's own address. Its granted secret is there,
    masked in what it printed."""
    text = log_of(system, attack_run)
    found = {k: v for k, v in results(text).items() if k in ATTACK_RESULTS or k.startswith("worker-environ-")}
    assert found["attack"] == "finished" and "sandbox, network egress" in text
    assert found["granted"] == "pypi=***"
    assert found["env-canary"] == "absent" and found["settings"] == "absent"
    assert "HAMSTER_DATABASE_URL" not in text and "HAMSTER_KAFKA_BOOTSTRAP" not in text
    assert found["proc"].endswith("canary absent") and int(found["proc"].split()[0]) <= 4
    environs = [v for k, v in found.items() if k.startswith("worker-environ-")]
    assert environs and set(environs) == {"unreadable"}
    assert (found["key"], found["db"], found["secrets-dir"]) == ("unreadable",) * 3
    assert found["home holds"].split() == ["workspaces"]
    assert (found["usr"], found["uid"]) == ("read-only", "1000")
    # HAMSTER_HOME is under /tmp here, so inside the sandbox its path lies in the sandbox's own /tmp (a
    # tmpfs of its own): a file written there never reaches the worker's home.
    assert found["home"] in {"read-only", "WRITTEN"}
    for target in ("broker", "controller", "intake", "broker-via-gateway", "broker-via-host-address"):
        assert found[target].startswith("unreachable"), (target, found[target])
    assert CANARY not in text and KEY_BODY not in text and PYPI_TOKEN not in text
    assert not (system.home / "planted").exists()


ATTACK_RESULTS = {
    "attack",
    "granted",
    "env-canary",
    "settings",
    "proc",
    "key",
    "db",
    "secrets-dir",
    "home holds",
    "home",
    "usr",
    "uid",
    "broker",
    "controller",
    "intake",
    "broker-via-gateway",
    "broker-via-host-address",
}


def test_the_probe_reaches_what_the_network_lets_it(system: System, probe_run: str):
    """The same probe with network="host" reaches the broker and the intake (so "unreachable" above is the
    sandbox's doing), and with network="none" reaches nothing."""
    host, none = log_of(system, probe_run).split("== none_probe", 1)
    assert results(host)["broker"] == "REACHED" and results(host)["intake"] == "REACHED"
    assert not [k for k, v in results(none).items() if v == "REACHED"]
    assert results(none)["broker"].startswith("unreachable")


def test_a_python_task_process_holds_no_setting_in_its_environment(system: System, attack_run: str):
    """The attack subscriber's Python task runs in a task process whose environment (os.environ and its
    /proc/self/environ) holds no HAMSTER_* setting and no HAMSTER_SECRET_*; it has its granted secret in
    ctx.secrets, in a trusted run."""
    [run] = [r for r in system.runs() if r["subscriber"] == "attack"]
    assert run["run_id"] == attack_run
    peek = outputs(system, run["run_id"])["peek"]
    seen = set(peek["hamster_variables"])
    assert "HAMSTER_TEST_CANARY" in seen  # the pipeline's own variables stay
    assert not seen & variables() and not [v for v in seen if v.startswith("HAMSTER_SECRET_")]
    assert peek["environ_has_secret_variable"] is False
    assert peek["granted"] == ["PYPI_TOKEN"] and peek["trusted"] is True
    assert requested(system, run["run_id"]).trust.reason == "not-a-fork"


def comment(system: System, repo: str, number: int, body: str, user: str) -> None:
    payload = with_repo(load("issue_comment", "created.payload.json"), repo)
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
    payload["comment"]["body"] = body
    payload["sender"]["login"] = user
    assert system.post("issue_comment", payload)[0] == 202


FORK_PR = from_fork(with_repo(load("pull_request", "opened.payload.json"), "trust/forks"), "mallory")


@pytest.fixture(scope="module")
def fork_run(system: System, fake: FakeGitHub) -> str:
    """The run of mallory's pull request from her fork to the forks subscriber, ended; its run id."""
    number, sha = FORK_PR["number"], FORK_PR["pull_request"]["head"]["sha"]
    fake.pr_heads[("trust/forks", number)] = sha
    fake.pr_forks[("trust/forks", number)] = "mallory/forks"
    return finished_run(system, "trust/forks", payload=FORK_PR)


def test_a_forks_pull_request_gets_no_secrets_until_a_writer_says_ok_to_test(
    system: System, fake: FakeGitHub, fork_run: str
):
    """A fork's pull request runs without its subscriber's secret (absent from the shell's environment and
    ctx.secrets) and may not comment; the run log says why. mallory (read) comments /ok-to-test: she is
    answered and nothing starts. octocat (write) comments it: the pull request's head runs again, trusted
    by octocat, with the secret (masked wherever it was printed) and its comment posted."""
    number, sha = FORK_PR["number"], FORK_PR["pull_request"]["head"]["sha"]
    first = requested(system, fork_run)
    assert (first.trust.trusted, first.trust.reason, first.trust.head_repo) == (
        False,
        "fork",
        "mallory/forks",
    )
    done = outputs(system, fork_run)
    assert "pypi=absent" in done["publish"]["output"]
    assert done["uses_secret"] == {"has_secret": False, "trusted": False, "echo": None}
    [refused] = [r for r in run_log(system, fork_run) if r.type == "StageFailed"]
    assert refused.stage == "thanks" and refused.error_type == "UntrustedRun"
    assert "secrets withheld" in log_of(system, fork_run)
    audit = system.cli("runs", "show", fork_run, "--audit")
    assert "untrusted: fork, head mallory/forks" in audit.stdout, audit.stderr
    assert fake.comments("trust/forks", number) == []

    comment(system, "trust/forks", number, "/ok-to-test", "mallory")
    [reply] = wait_until(lambda: fake.comments("trust/forks", number), 60, what="the refusal")
    assert "@mallory" in reply["body"] and "Nothing was started" in reply["body"]

    comment(system, "trust/forks", number, "/ok-to-test", "octocat")

    def vouched_run() -> dict[str, Any] | None:
        runs = [r for r in system.runs() if r["subscriber"] == "forks" and r["run_id"] != fork_run]
        return runs[0] if runs and runs[0]["status"] in {"succeeded", "failed", "cancelled"} else None

    second = wait_until(vouched_run, 180, what="the run /ok-to-test started")
    assert second["status"] == "succeeded"
    trust = requested(system, second["run_id"]).trust
    assert (trust.trusted, trust.reason, trust.by) == (True, "ok-to-test", "octocat")
    assert "trusted: ok-to-test, by octocat" in system.cli("runs", "show", second["run_id"], "--audit").stdout
    done = outputs(system, second["run_id"])
    assert "pypi=***" in done["publish"]["output"]
    assert done["uses_secret"] == {"has_secret": True, "trusted": True, "echo": "***"}
    assert [c["body"].split("\n")[0] for c in fake.comments("trust/forks", number)][1:] == [
        f"tested {sha[:7]}"
    ]
    # mallory's comment started nothing: the fork's run and octocat's are the subscriber's only runs.
    assert sorted(r["run_id"] for r in system.runs() if r["subscriber"] == "forks") == sorted(
        [fork_run, second["run_id"]]
    )


def test_a_subscriber_that_trusts_forks_gives_them_its_secrets(system: System, trusting_run: str):
    """trust_forks=True: a fork's pull request gets the secret, and the run log says it was by opting in."""
    assert requested(system, trusting_run).trust.reason == "trust-forks"
    assert outputs(system, trusting_run)["uses_secret"] == {
        "has_secret": True,
        "trusted": True,
        "echo": "***",
    }


def leaks(blob: bytes) -> list[str]:
    return secret_scan.leaks(blob, SECRETS)


def page(system: System, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{system.intake_port}{path}", timeout=30) as answer:
        return bytes(answer.read())


def test_nothing_any_run_wrote_holds_a_secret(
    system: System, attack_run: str, probe_run: str, fork_run: str, trusting_run: str
):
    """Every topic record, every file under HAMSTER_HOME (worker and intake logs, the shell stages' log
    files, the database, artifacts) and the dashboard's pages and API of every run: no secret value, plain
    or base64. Every subscriber has run at least once (after the tests above, /ok-to-test's run too)."""
    runs = system.runs()
    run_ids = [r["run_id"] for r in runs]
    assert {attack_run, probe_run, fork_run, trusting_run} <= set(run_ids)
    assert {r["subscriber"] for r in runs} == SUBSCRIBERS
    written: dict[str, bytes] = {}
    for path in ("/", "/subscribers", "/api/runs?limit=100"):
        written[f"page {path}"] = page(system, path)
    for run_id in run_ids:
        for path in (f"/runs/{run_id}", f"/runs/{run_id}/log.txt", f"/api/runs/{run_id}"):
            written[f"page {path}"] = page(system, path)
    system.stop()  # flush and close every log before reading them
    written |= secret_scan.files_under(system.home)
    written |= secret_scan.topic_records(system)
    # The search covered real material: logs, the database, shell logs, the run log, the logs topic.
    assert any(name.endswith("worker-1.log") and blob for name, blob in written.items())
    assert any(name.endswith("hamster.db") for name in written)
    assert any(name.endswith("attack.log") for name in written)
    assert any(".logs[" in name for name in written) and any(".run-events[" in name for name in written)
    assert any(b"pypi=***" in blob for blob in written.values())
    assert {name: leaks(blob) for name, blob in written.items() if leaks(blob)} == {}
