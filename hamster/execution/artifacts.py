"""Files a stage keeps: stored by run, stage and name in the store ``HAMSTER_ARTIFACTS_URL`` addresses.

The store is any filesystem fsspec can open from a URL: a local directory by default
(``$HAMSTER_HOME/artifacts``), ``s3://bucket/prefix`` or ``gs://…`` in deployments (with that
filesystem's package installed). An artifact lives at ``<store>/<run id>/<stage>/<name>``; the store
itself is the index, so the worker, ``hamster web`` and the CLI need nothing but its URL.

A shell stage's ``artifacts=`` and ``junit=`` globs come from the repository under test (pull-request
content): ``confined_glob`` refuses absolute patterns, ``..`` and any match (or symlink) that resolves
outside the workspace. ``ctx.artifacts.save`` from task code takes any file the task can read: the task
is the pipeline's own code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal, Protocol, overload

from fsspec.core import url_to_fs

from hamster.errors import TaskError
from hamster.execution.outcome import NonRetryable
from hamster.settings import Settings

REPORT = ".tests.json"  # a stage's test report; artifact names cannot start with a dot
_NAME = re.compile(r"^[A-Za-z0-9_.@+=-][A-Za-z0-9_.@+=/ -]{0,254}$")


class ArtifactRefused(TaskError, NonRetryable):
    """A glob or a file that may not become an artifact (it escapes the workspace, say). Not retried:
    the same content would be refused again."""

    retryable = False


class ArtifactNotFound(TaskError, NonRetryable):
    """No artifact of that name in the run (or not in the stages before this one)."""

    retryable = False


@dataclass(frozen=True)
class ArtifactInfo:
    run_id: str
    stage: str
    name: str
    size: int


def check_name(name: str) -> str:
    parts = PurePosixPath(name).parts
    if not _NAME.match(name) or any(part in {".", ".."} for part in parts) or name.endswith("/"):
        raise ArtifactRefused(f"{name!r} cannot name an artifact (letters, digits, ._-@+= and /, no ..)")
    return name


def artifacts_url(settings: Settings) -> str:
    return settings.artifacts_url or (settings.home.resolve() / "artifacts").as_uri()


class FileSystem(Protocol):
    """What the store uses of an ``fsspec.AbstractFileSystem`` (fsspec has no types). ``find`` and ``ls``
    with ``detail`` give each path's info: a dict whose keys depend on the filesystem (see ``_modified``)."""

    def exists(self, path: str) -> bool: ...
    def makedirs(self, path: str, exist_ok: bool = False) -> None: ...
    def put_file(self, lpath: str, rpath: str) -> None: ...
    def get_file(self, rpath: str, lpath: str) -> None: ...
    def pipe_file(self, path: str, value: bytes) -> None: ...
    def cat_file(self, path: str) -> bytes: ...
    def open(self, path: str, mode: Literal["rb"]) -> BinaryIO: ...
    @overload
    def find(self, path: str) -> list[str]: ...
    @overload
    def find(self, path: str, detail: Literal[True]) -> dict[str, dict[str, Any]]: ...
    def ls(self, path: str, detail: Literal[False]) -> list[str]: ...
    def rm(self, path: str, recursive: bool = False) -> None: ...


class ArtifactStore:
    """The artifacts of every run, in one fsspec filesystem under one root."""

    def __init__(self, url: str) -> None:
        fs, root = url_to_fs(url)
        self.fs: FileSystem = fs
        self.root = str(root).rstrip("/")

    @classmethod
    def for_settings(cls, settings: Settings) -> ArtifactStore:
        return cls(artifacts_url(settings))

    def _path(self, run_id: str, stage: str = "", name: str = "") -> str:
        return "/".join(
            part for part in (self.root, check_name(run_id), stage and check_name(stage), name) if part
        )

    def put(self, run_id: str, stage: str, name: str, source: Path) -> ArtifactInfo:
        target = self._path(run_id, stage, check_name(name))
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self.fs.put_file(str(source), target)
        return ArtifactInfo(run_id, stage, name, source.stat().st_size)

    def put_report(self, run_id: str, stage: str, report: dict[str, Any]) -> None:
        """Keep a stage's test report (``execution.test_reports``) as the hidden file ``.tests.json``."""
        target = self._path(run_id, stage, REPORT)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(target, json.dumps(report).encode())

    def reports(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The test reports of the run's stages, by stage name."""
        base = self._path(run_id)
        if not self.fs.exists(base):
            return {}
        found = {}
        for path in sorted(self.fs.find(base)):
            if path.endswith("/" + REPORT):
                found[path.rsplit("/", 2)[-2]] = json.loads(self.fs.cat_file(path))
        return found

    def list_run(self, run_id: str) -> list[ArtifactInfo]:
        base = self._path(run_id)
        if not self.fs.exists(base):
            return []
        found = []
        for path, info in sorted(self.fs.find(base, detail=True).items()):
            relative = (
                path[len(base) :].lstrip("/") if path.startswith(base) else path.split(f"/{run_id}/", 1)[1]
            )
            stage, _, name = relative.partition("/")
            if name == REPORT:
                continue
            found.append(ArtifactInfo(run_id, stage, name, int(info.get("size") or 0)))
        return found

    def find(self, run_id: str, name: str, stages: list[str] | None = None) -> ArtifactInfo:
        """The artifact ``name`` of the run (of the latest of ``stages`` that kept one, when given)."""
        matches = [a for a in self.list_run(run_id) if a.name == name]
        if stages is not None:
            matches = sorted((a for a in matches if a.stage in stages), key=lambda a: stages.index(a.stage))
        if not matches:
            raise ArtifactNotFound(f"run {run_id} has no artifact named {name!r}")
        return matches[-1]

    def open(self, artifact: ArtifactInfo) -> BinaryIO:
        return self.fs.open(self._path(artifact.run_id, artifact.stage, artifact.name), "rb")

    def download(self, artifact: ArtifactInfo, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self._path(artifact.run_id, artifact.stage, artifact.name), str(target))
        return target

    def expire(self, older_than: timedelta, now: datetime | None = None) -> list[str]:
        """Remove the runs whose newest artifact is older than ``older_than``; their run ids."""
        if not self.fs.exists(self.root):
            return []
        cutoff = (now or datetime.now(UTC)) - older_than
        removed = []
        for run_dir in self.fs.ls(self.root, detail=False):
            stamps = [_modified(info) for info in self.fs.find(run_dir, detail=True).values()]
            known = [stamp for stamp in stamps if stamp is not None]
            if known and max(known) < cutoff:
                self.fs.rm(run_dir, recursive=True)
                removed.append(str(run_dir).rstrip("/").rsplit("/", 1)[-1])
        return removed


def _modified(info: dict[str, Any]) -> datetime | None:
    # Filesystems name it differently: local 'mtime' (epoch seconds), s3 'LastModified', gcs 'updated'.
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def confined_glob(workspace: Path, pattern: str) -> list[Path]:
    """The files ``pattern`` matches in ``workspace``; ``ArtifactRefused`` when the pattern or a match
    leads outside it (``..``, an absolute path, a symlink pointing out)."""
    root = workspace.resolve()
    if (
        PurePosixPath(pattern).is_absolute()
        or Path(pattern).is_absolute()
        or ".." in PurePosixPath(pattern).parts
    ):
        raise ArtifactRefused(f"artifact glob {pattern!r} leads outside the workspace")
    files = []
    for match in sorted(root.glob(pattern)):
        resolved = match.resolve()
        if not resolved.is_relative_to(root):
            raise ArtifactRefused(
                f"artifact glob {pattern!r} matched {match.relative_to(root)}, which leads outside the "
                f"workspace (to {resolved})"
            )
        if resolved.is_file():
            files.append(match)
    return files


@dataclass(frozen=True)
class StageArtifacts:
    """``ctx.artifacts``: this stage's files to keep, and the ones earlier stages kept."""

    store: ArtifactStore
    run_id: str
    stage: str
    earlier: tuple[str, ...]  # the stages before this one, in pipeline order
    workspace: Path

    def save(self, path: str | Path, name: str | None = None) -> str:
        """Keep the file ``path`` (any file the task can read) as ``name`` (default: its file name)."""
        source = Path(path)
        if not source.is_absolute():
            source = self.workspace / source
        if not source.is_file():
            raise ArtifactNotFound(f"{path}: no such file to keep as an artifact")
        name = check_name(name or source.name)
        self.store.put(self.run_id, self.stage, name, source)
        return name

    def get(self, name: str, target: str | Path | None = None) -> Path:
        """The artifact ``name`` an earlier stage kept, downloaded to ``target`` (default: the workspace,
        under its name); returns where it is."""
        artifact = self.store.find(self.run_id, name, list(self.earlier))
        where = Path(target) if target is not None else self.workspace / name
        if not where.is_absolute():
            where = self.workspace / where
        return self.store.download(artifact, where)

    def names(self) -> list[str]:
        """Names of the artifacts earlier stages kept."""
        return [a.name for a in self.store.list_run(self.run_id) if a.stage in self.earlier]


def for_stage(settings: Settings, run_id: str, stage: str, outputs: dict[str, Any]) -> StageArtifacts:
    """``ctx.artifacts`` of a stage: the earlier stages are those whose outputs it is given."""
    from hamster.tasks.workspace import stage_workspace

    workspace = stage_workspace(settings.home, run_id, outputs)
    return StageArtifacts(ArtifactStore.for_settings(settings), run_id, stage, tuple(outputs), workspace)
