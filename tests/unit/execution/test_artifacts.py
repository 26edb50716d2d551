"""The artifact store on a local directory, and globs confined to the workspace."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hamster.execution.artifacts import (
    ArtifactNotFound,
    ArtifactRefused,
    ArtifactStore,
    StageArtifacts,
    confined_glob,
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "dist").mkdir(parents=True)
    (root / "dist" / "app.whl").write_text("wheel")
    (root / "reports" / "unit").mkdir(parents=True)
    (root / "reports" / "unit" / "a.xml").write_text("<a/>")
    return root


def test_a_glob_matches_files_in_the_workspace(workspace: Path):
    """Files only, in order, ** crossing directories."""
    assert [p.name for p in confined_glob(workspace, "dist/*.whl")] == ["app.whl"]
    assert [p.name for p in confined_glob(workspace, "reports/**/*.xml")] == ["a.xml"]


@pytest.mark.parametrize("pattern", ["../*", "dist/../../etc/*", "/etc/passwd"])
def test_a_glob_leading_out_of_the_workspace_is_refused(workspace: Path, pattern: str):
    """.. and absolute paths never reach the filesystem."""
    with pytest.raises(ArtifactRefused, match="leads outside the workspace"):
        confined_glob(workspace, pattern)


def test_a_symlink_pointing_out_of_the_workspace_is_refused(workspace: Path, tmp_path: Path):
    """A match that resolves outside the workspace (a symlinked directory or file) is refused."""
    (tmp_path / "secret.txt").write_text("s")
    os.symlink(tmp_path, workspace / "up")
    with pytest.raises(ArtifactRefused, match="leads outside"):
        confined_glob(workspace, "up/*.txt")
    os.symlink(tmp_path / "secret.txt", workspace / "dist" / "link.whl")
    with pytest.raises(ArtifactRefused):
        confined_glob(workspace, "dist/*.whl")


def test_saved_artifacts_are_listed_and_given_to_later_stages(workspace: Path, tmp_path: Path):
    """Saved by run, stage and name; a later stage gets it by name; a stage not before it cannot."""
    store = ArtifactStore((tmp_path / "store").as_uri())
    build = StageArtifacts(store, "run-1", "build", (), workspace)
    assert build.save("dist/app.whl") == "app.whl"
    assert build.save(workspace / "dist" / "app.whl", name="renamed.whl") == "renamed.whl"
    assert [(a.stage, a.name, a.size) for a in store.list_run("run-1")] == [
        ("build", "app.whl", 5),
        ("build", "renamed.whl", 5),
    ]
    later = StageArtifacts(store, "run-1", "deploy", ("build",), tmp_path / "other")
    assert later.get("app.whl").read_text() == "wheel"
    assert (tmp_path / "other" / "app.whl").exists()
    assert later.names() == ["app.whl", "renamed.whl"]
    unrelated = StageArtifacts(store, "run-1", "first", (), workspace)
    with pytest.raises(ArtifactNotFound):
        unrelated.get("app.whl")
    with pytest.raises(ArtifactRefused):
        build.save("dist/app.whl", name="../escape")


def test_test_reports_are_kept_apart_from_the_artifacts(tmp_path: Path):
    """A report is not an artifact a user lists or downloads."""
    store = ArtifactStore((tmp_path / "store").as_uri())
    store.put_report("run-1", "tests", {"tests": 3})
    assert store.reports("run-1") == {"tests": {"tests": 3}}
    assert store.list_run("run-1") == []


def test_artifacts_expire_with_the_retention(workspace: Path, tmp_path: Path):
    """Runs whose newest artifact is older than the retention are removed whole; newer ones stay."""
    store = ArtifactStore((tmp_path / "store").as_uri())
    StageArtifacts(store, "old-run", "build", (), workspace).save("dist/app.whl")
    StageArtifacts(store, "new-run", "build", (), workspace).save("dist/app.whl")
    month_ago = (datetime.now(UTC) - timedelta(days=31)).timestamp()
    os.utime(tmp_path / "store" / "old-run" / "build" / "app.whl", (month_ago, month_ago))
    assert store.expire(timedelta(days=30)) == ["old-run"]
    assert [a.run_id for a in store.list_run("new-run")] == ["new-run"]
    assert store.list_run("old-run") == []
