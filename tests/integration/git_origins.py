"""Local git repositories standing in for GitHub's: real git, a bare repository per ``owner/name``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.samples import load


def git(*args: str, cwd: Path) -> str:
    """Run git in ``cwd`` as a committer named ``t``; its output, stripped."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    done = subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def pull_request_origin(root: Path, work: Path, repo: str) -> str:
    """A bare ``<root>/<repo>.git`` with main and the head ``refs/pull/<n>/head`` of the recorded pull
    request sample (one commit past main), made in the empty folder ``work``; that head's sha."""
    bare = root / f"{repo}.git"
    bare.mkdir(parents=True)
    git("init", "-q", "--bare", str(bare), cwd=root)
    git("init", "-q", "-b", "main", cwd=work)
    (work / "app.txt").write_text("main\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "main", cwd=work)
    (work / "app.txt").write_text("feature\n")
    git("commit", "-q", "-am", "feature", cwd=work)
    number = load("pull_request", "opened.payload.json")["number"]
    git("push", "-q", str(bare), "HEAD~1:refs/heads/main", f"HEAD:refs/pull/{number}/head", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)
