"""`checkout` and `shell` with real git and real processes: local bare repositories stand in for GitHub."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from hamster.errors import TaskTimeout
from hamster.github.client import GitHubClient
from hamster.github.objects import EventObjects
from hamster.intake.github_events import event_info
from hamster.pipelines.context import TaskContext
from hamster.settings import load_settings
from hamster.tasks import checkout, shell
from hamster.tasks.checkout import CheckoutFailed
from hamster.tasks.git import UnsafeCheckout
from hamster.tasks.shell import TAIL_BYTES, ShellFailed
from hamster.tasks.workspace import remove_workspace, workspace_path
from tests.integration.git_origins import git
from tests.samples import branch_push, load, with_repo

TOKEN = "tok-abcdef0123456789"


@pytest.fixture
def origin(tmp_path: Path) -> dict:
    """A bare repository ``acme/app.git`` under a served root: main, a newer main, and a PR head ref."""
    root = tmp_path / "git"
    bare = root / "acme" / "app.git"
    bare.mkdir(parents=True)
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "app.txt").write_text("v1\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "v1", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    (work / "app.txt").write_text("v2\n")
    git("commit", "-q", "-am", "v2", cwd=work)
    second = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "-q", "-b", "feature", first, cwd=work)
    (work / "feature.txt").write_text("feature\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "feature", cwd=work)
    pr_head = git("rev-parse", "HEAD", cwd=work)
    git("push", "-q", str(bare), "main", "feature:refs/pull/7/head", cwd=work)
    return {"root": root, "first": first, "second": second, "pr_head": pr_head}


def ctx_for(
    tmp_path: Path, event, params=None, outputs=None, stage="checkout", run_id="run-1"
) -> TaskContext:
    settings = load_settings(
        home=tmp_path / "home", github_git_url=f"file://{tmp_path / 'git'}/", github_api_token=TOKEN
    )
    return TaskContext(
        event=event,
        params=params or {},
        outputs=outputs or {},
        run_id=run_id,
        attempt=1,
        subscriber="ci",
        stage=stage,
        github=EventObjects(GitHubClient(settings), event),
    )


def push_event(sha: str):
    payload = with_repo(branch_push("main"), "acme/app")
    payload["after"] = sha
    return event_info("push", "d-1", payload)


def pr_event(sha: str, number: int = 7):
    payload = with_repo(load("pull_request", "opened.payload.json"), "acme/app")
    payload["pull_request"]["head"]["sha"] = sha
    payload["pull_request"]["number"] = number
    payload["pull_request"]["base"]["ref"] = "main"
    return event_info("pull_request", "d-2", payload)


def test_checkout_lands_on_the_requested_sha(tmp_path, origin):
    """A push event's checkout lands on the event's sha, even when the branch has moved on since."""
    ctx = ctx_for(tmp_path, push_event(origin["first"]))
    out = checkout(ctx)
    ws = Path(out["workspace"])
    assert out["sha"] == origin["first"] and out["head"] == origin["first"]
    assert git("rev-parse", "HEAD", cwd=ws) == origin["first"]
    assert (ws / "app.txt").read_text() == "v1\n"
    assert ws == workspace_path(tmp_path / "home", "run-1")
    assert TOKEN not in (ws / ".git" / "config").read_text()


def test_pull_request_checks_out_the_pr_head_and_can_merge(tmp_path, origin):
    """A pull_request event checks out refs/pull/N/head; with merge it is merged onto the base branch."""
    out = checkout(ctx_for(tmp_path, pr_event(origin["pr_head"])))
    assert out["head"] == origin["pr_head"] and (Path(out["workspace"]) / "feature.txt").exists()
    merged = checkout(
        ctx_for(tmp_path, pr_event(origin["pr_head"]), {"checkout": {"merge": True}}, run_id="run-2")
    )
    ws = Path(merged["workspace"])
    assert merged["merged"] is True and merged["head"] not in {origin["pr_head"], origin["second"]}
    assert (ws / "app.txt").read_text() == "v2\n" and (ws / "feature.txt").exists()


def test_shell_runs_in_the_workspace_and_keeps_the_tail(tmp_path, origin):
    """shell runs in the checked-out workspace; the output keeps the last 64 KiB, the log keeps it all."""
    ctx = ctx_for(tmp_path, push_event(origin["second"]))
    out = checkout(ctx)
    run = shell("cat app.txt; head -c 100000 /dev/zero | tr '\\0' x; echo; echo end", name="tests")
    result = run(ctx_for(tmp_path, ctx.event, outputs={"checkout": out}, stage="tests"))
    assert result["exit_code"] == 0
    assert result["output"].endswith("end\n") and len(result["output"].encode()) <= TAIL_BYTES
    full = Path(result["log"]).read_text()
    assert "v2\n" in full and len(full) > 100000
    assert Path(result["log"]) == tmp_path / "home" / "logs" / "runs" / "run-1" / "tests.log"


def test_shell_nonzero_exit_fails_the_stage(tmp_path):
    """A command exiting non-zero fails the stage, with its last output in the message."""
    ctx = ctx_for(tmp_path, push_event("a" * 40), stage="tests")
    with pytest.raises(ShellFailed, match="exited with 3") as failed:
        shell("echo broken; exit 3", name="tests")(ctx)
    assert "broken" in str(failed.value)


def test_shell_timeout_kills_the_process_group(tmp_path):
    """A command past its timeout is killed with every child it started, and the stage times out."""
    ctx = ctx_for(tmp_path, push_event("b" * 40), stage="slow")
    nap = f"{300 + uuid.uuid4().int % 1000}.5"  # a sleep no other process on the machine runs
    command = f"sleep {nap} & wait"
    with pytest.raises(TaskTimeout, match=r"timeout of 1\.0 s"):
        shell(command, name="slow", timeout=1.0)(ctx)
    # The sandbox has its own PID namespace: the child is found by its command line, from outside.
    deadline = time.monotonic() + 30
    while children := [pid for pid in sleeping(nap) if alive(pid)]:
        assert time.monotonic() < deadline, f"the background child {children} survived the timeout"
        time.sleep(0.1)


def sleeping(nap: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().split(b"\0")[:2] == [b"sleep", nap.encode()]:
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped by init counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def test_shell_does_not_see_the_token(tmp_path, monkeypatch):
    """The command's environment lacks Hamster's secrets, and the token is redacted from the output."""
    monkeypatch.setenv("HAMSTER_GITHUB_API_TOKEN", TOKEN)
    ctx = ctx_for(tmp_path, push_event("c" * 40), stage="env")
    out = shell(f"env; echo {TOKEN}", name="env")(ctx)
    assert "HAMSTER_GITHUB_API_TOKEN" not in out["output"] and TOKEN not in out["output"]


def test_workspace_is_removed(tmp_path, origin):
    """remove_workspace deletes the run's workspace (the reporting agent calls it when the run ends)."""
    out = checkout(ctx_for(tmp_path, push_event(origin["first"])))
    assert remove_workspace(tmp_path / "home", "run-1") is True
    assert not Path(out["workspace"]).exists()
    assert remove_workspace(tmp_path / "home", "run-1") is False


@pytest.fixture
def sshd(tmp_path: Path):
    """A real sshd on a free loopback port, with a host key of its own and one authorized client key.

    Returns the client key and a known_hosts file naming the server's host key, so the checkout verifies
    the host as it would GitHub's. The server runs in a session of its own and is stopped afterwards.
    """
    ssh = tmp_path / "ssh"
    ssh.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / name)], check=True)
    (ssh / "authorized_keys").write_text((ssh / "client.pub").read_text())
    port = free_port()
    config = ssh / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {ssh / 'host'}\nPidFile {ssh / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {ssh / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    host_key = (ssh / "host.pub").read_text().split()
    (ssh / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    log = (ssh / "sshd.log").open("wb")
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stdout=log, stderr=log, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while b"Server listening" not in (ssh / "sshd.log").read_bytes():
            assert proc.poll() is None, (ssh / "sshd.log").read_text()
            assert time.monotonic() < deadline, "sshd did not start listening"
            time.sleep(0.1)
        yield {
            "port": port,
            "key": ssh / "client",
            "known_hosts": ssh / "known_hosts",
            "log": ssh / "sshd.log",
        }
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssh_ctx(tmp_path: Path, event, sshd: dict, known_hosts: Path) -> TaskContext:
    user = pwd.getpwuid(os.getuid()).pw_name
    settings = load_settings(
        home=tmp_path / "home",
        github_git_url=f"ssh://{user}@127.0.0.1:{sshd['port']}{tmp_path / 'git'}/",
        github_key=sshd["key"],
        github_known_hosts=known_hosts,
    )
    return TaskContext(
        event=event,
        params={},
        outputs={},
        run_id="run-ssh",
        attempt=1,
        subscriber="ci",
        stage="checkout",
        github=EventObjects(GitHubClient(settings), event),
    )


def test_checkout_over_ssh_with_the_key_and_a_verified_host(tmp_path, origin, sshd):
    """Over ssh, checkout authenticates with the configured key and lands on the PR head's sha."""
    out = checkout(ssh_ctx(tmp_path, pr_event(origin["pr_head"]), sshd, sshd["known_hosts"]))
    assert out["head"] == origin["pr_head"]
    assert (Path(out["workspace"]) / "feature.txt").exists()
    assert "Accepted publickey" in sshd["log"].read_text()


def test_checkout_over_ssh_refuses_an_unknown_host(tmp_path, origin, sshd):
    """A host whose key is not in known_hosts is refused: host keys are never taken on trust."""
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(CheckoutFailed, match="Host key verification failed"):
        checkout(ssh_ctx(tmp_path, pr_event(origin["pr_head"]), sshd, empty))


HOSTILE = [
    pytest.param(
        "sha", "--upload-pack=touch pwned", "is not 40 to 64 lower-case hex digits", id="sha-option"
    ),
    pytest.param("sha", "HEAD", "is not 40 to 64 lower-case hex digits", id="sha-a-name"),
    pytest.param("sha", "A" * 40, "is not 40 to 64 lower-case hex digits", id="sha-upper-case"),
    pytest.param("repo", "acme/../../etc", "is not owner/name", id="repo-dots"),
    pytest.param("repo", "-oProxyCommand=touch pwned/app", "is not owner/name", id="repo-option"),
    pytest.param("repo", "acme/app name", "is not owner/name", id="repo-space"),
    pytest.param("ref", "refs/heads/--upload-pack=x..y", "is not a valid git ref", id="ref-dots"),
]


@pytest.mark.parametrize(("field", "value", "message"), HOSTILE)
def test_a_hostile_sha_repo_or_ref_is_refused_before_git_runs(tmp_path, origin, field, value, message):
    """A webhook's sha, repository or ref that GitHub would never send fails the checkout with a clear
    error, before any git command ran (the workspace is never even created)."""
    event = push_event(origin["first"])
    event = event.model_copy(update={field: value})
    with pytest.raises(UnsafeCheckout) as refused:
        checkout(ctx_for(tmp_path, event))
    assert str(refused.value).startswith("checkout refused: ") and message in str(refused.value)
    assert not workspace_path(tmp_path / "home", "run-1").exists()
