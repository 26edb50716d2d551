"""The broker's tools and classpath: ``java``, and Kafka's jars fetched once with Maven and cached.

The cache lives outside the repository, in ``$XDG_CACHE_HOME/hamster/kafka-<version>/lib`` (default
``~/.cache``). Maven downloads into a temporary directory next to it, which is renamed into place only after
a manifest is written, so an interrupted or failed download never leaves a half cache behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from hamster.broker.config import KAFKA_VERSION
from hamster.errors import BrokerError

MANIFEST = "hamster-manifest.txt"
MAVEN_TIMEOUT_S = 900.0


def package_file(name: str) -> str:
    """The text of a file shipped in this package (``pom.xml``, ``log4j2.properties``)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where the jars are cached. A relative XDG_CACHE_HOME is invalid and ignored, as the XDG spec says:
    https://specifications.freedesktop.org/basedir-spec/latest/#variables
    """
    xdg = env.get("XDG_CACHE_HOME", "")
    home = Path(env.get("HOME") or Path.home())
    root = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return root / "hamster" / f"kafka-{KAFKA_VERSION}" / "lib"


def find_java(env: Mapping[str, str] = os.environ) -> str:
    """``$JAVA_HOME/bin/java`` if set, else ``java`` on PATH."""
    java_home = env.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "java not found: the local Kafka broker needs Java 17 or newer "
            "(e.g. apt-get install openjdk-17-jre-headless, or set JAVA_HOME)"
        )
    return java


def ensure_jars(progress: Callable[[str], None]) -> Path:
    """The directory of Kafka's jars, fetched with Maven unless a complete cache for this pom exists."""
    pom = package_file("pom.xml")
    lib = cache_dir()
    if is_complete(lib, pom):
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            f"mvn not found: Maven is needed once, to fetch the Kafka {KAFKA_VERSION} jars "
            "(e.g. apt-get install maven)"
        )
    progress(f"fetching Kafka {KAFKA_VERSION} jars with Maven into {lib} (once)")
    try:
        lib.parent.mkdir(parents=True, exist_ok=True)
        # Same parent directory, so the final rename stays on one filesystem and is atomic.
        with tempfile.TemporaryDirectory(dir=lib.parent, prefix=".fetch-") as work:
            staged = _download(mvn, pom, Path(work))
            _move_into_place(staged, lib, pom)
    except OSError as exc:
        raise BrokerError(f"cannot write the jar cache in {lib.parent}: {exc}") from exc
    return lib


def is_complete(lib: Path, pom: str) -> bool:
    """True if ``lib`` was fetched for exactly this pom and still holds every jar it listed."""
    try:
        first, *jars = (lib / MANIFEST).read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return False
    return first == pom_fingerprint(pom) and bool(jars) and all((lib / jar).is_file() for jar in jars)


def pom_fingerprint(pom: str) -> str:
    """The manifest's first line: a cache fetched for another pom is fetched again."""
    return "pom-sha256 " + hashlib.sha256(pom.encode()).hexdigest()


def _download(mvn: str, pom: str, work: Path) -> Path:
    (work / "pom.xml").write_text(pom, encoding="utf-8")
    staged = work / "lib"
    command = [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(work / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staged}",
        "-DincludeScope=runtime",
    ]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"mvn did not fetch the Kafka jars within {MAVEN_TIMEOUT_S:.0f} s") from exc
    jars = sorted(p.name for p in staged.glob("*.jar")) if staged.is_dir() else []
    if result.returncode != 0 or not jars:
        output = (result.stdout + result.stderr).strip().splitlines()[-20:]
        raise BrokerError("mvn could not fetch the Kafka jars:\n" + "\n".join(output))
    (staged / MANIFEST).write_text("\n".join([pom_fingerprint(pom), *jars]) + "\n", encoding="utf-8")
    return staged


def _move_into_place(staged: Path, lib: Path, pom: str) -> None:
    if lib.exists():
        # An incomplete cache or one for another pom: move it aside (into the temporary directory, which is
        # removed afterwards) because a rename onto a non-empty directory fails.
        os.rename(lib, staged.parent / "previous")
    try:
        os.rename(staged, lib)
    except OSError:
        # Another process finished its own download first; theirs is as good as ours.
        if not is_complete(lib, pom):
            raise
