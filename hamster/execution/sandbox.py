"""The sandbox ``shell`` stages run in: bubblewrap (``bwrap``), and for ``network="egress"`` slirp4netns.

What a sandboxed command sees (the plan, ``bwrap_argv``, is pure; ``spawn`` starts it):

- **its own namespaces**: user (it is uid 1000, ``hamster``, mapped to the worker's uid), PID (its own
  ``/proc``: the worker's processes and their ``/proc/<pid>/environ`` do not exist there), mount, IPC, UTS
  and cgroup; it dies with the worker (``--die-with-parent``) and runs in a session of its own;
- **files**: the system's programs and libraries read-only (``/usr`` and the ``/bin``, ``/lib``… beside
  it, a few files of ``/etc``: certificates, name resolution, the dynamic linker's cache), a passwd and
  group file naming it, a private ``/dev``, an empty ``/tmp`` of its own (gone when it ends), and the
  workspace, read-write: the only place it can change that outlives it. ``HAMSTER_HOME`` (keys, logs,
  other runs' workspaces, the database), the worker's code and virtualenv, ``/root``, ``/home`` and the
  rest of ``/etc`` are not there at all;
- **its environment**: exactly what it is given (``hamster.execution.task_env``); bwrap itself is started with
  that environment too, so its own process inside (PID 1 there) holds nothing more;
- **the network** (``network=``): ``"none"``, a loopback of its own and nothing else; ``"egress"`` (the
  default), a user-mode network stack (slirp4netns, with ``--disable-host-loopback``) that reaches outside
  hosts but not the worker's loopback, so not the broker, the database or the dashboard listening there;
  ``"host"``, the worker's own network, loopback services included: for trusted stages that need them.

bubblewrap is Debian's ``bubblewrap`` package, slirp4netns Debian's ``slirp4netns`` (``make test-deps``
installs both, ``scripts/sandbox.sh``). Zuul's executor runs untrusted job content the same way.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, get_args

from hamster.errors import TaskError

Network = Literal["none", "egress", "host"]
NETWORKS: tuple[Network, ...] = get_args(Network)
UID = GID = 1000
HOME = "/tmp"
SLIRP_DNS = "10.0.2.3"  # slirp4netns's own DNS forwarder, the only resolver an egress sandbox can reach
SETUP_TIMEOUT_S = 30.0
# Beside /usr: merged-/usr systems have symlinks here, older ones directories.
ROOT_ENTRIES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_ENTRIES = (
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "ssl",
    "pki",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "protocols",
    "services",
    "gitconfig",
)
PASSWD = f"hamster:x:{UID}:{GID}:Hamster CI stage:{HOME}:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = f"hamster:x:{GID}:\nnogroup:x:65534:\n"


class SandboxUnavailable(TaskError):
    """The sandbox cannot run here (no bubblewrap, or the kernel refuses its namespaces); a sandboxed stage
    is refused rather than run without it (``HAMSTER_SANDBOX=off`` runs stages unsandboxed, on purpose)."""

    retryable = False


@dataclass(frozen=True)
class Entry:
    """A path of the host the sandbox mirrors: a symlink (``target``) or a directory/file to bind."""

    path: str
    target: str | None = None


def host_layout(root: Path = Path("/")) -> tuple[Entry, ...]:
    """What of the host the sandbox shows (read-only), as it is on this machine."""
    found = [Entry("/usr")]
    for name in ROOT_ENTRIES:
        path = root / name
        if path.is_symlink():
            found.append(Entry(f"/{name}", os.readlink(path)))
        elif path.is_dir():
            found.append(Entry(f"/{name}"))
    for name in ETC_ENTRIES:
        path = root / "etc" / name
        if path.is_symlink() and not path.exists():
            continue
        if path.exists():
            found.append(Entry(f"/etc/{name}"))
    return tuple(found)


def bwrap_argv(
    command: Sequence[str],
    *,
    workspace: Path,
    network: Network,
    layout: Sequence[Entry],
    files: Mapping[str, str],
    info_fd: int | None = None,
    block_fd: int | None = None,
) -> list[str]:
    """bubblewrap's arguments to run ``command`` in ``workspace``. ``files``: sandbox path → host file to
    bind read-only over it (passwd, group, resolv.conf). ``info_fd``/``block_fd``: for ``egress``, where
    bwrap says its child's pid and what it waits on before starting the command (the network is ready)."""
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
    argv = [
        "bwrap",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--uid",
        str(UID),
        "--gid",
        str(GID),
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    if network != "host":
        argv.append("--unshare-net")
    for entry in layout:
        if entry.target is not None:
            argv += ["--symlink", entry.target, entry.path]
        else:
            argv += ["--ro-bind", entry.path, entry.path]
    for inside, outside in sorted(files.items()):
        argv += ["--ro-bind", outside, inside]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += ["--bind", str(workspace), str(workspace), "--chdir", str(workspace)]
    if info_fd is not None:
        argv += ["--info-fd", str(info_fd)]
    if block_fd is not None:
        argv += ["--block-fd", str(block_fd)]
    argv += ["--remount-ro", "/", "--", *command]
    return argv


def sandbox_env(env: Mapping[str, str]) -> dict[str, str]:
    """The command's environment inside: as given, with a ``HOME`` that exists there."""
    return {**env, "HOME": HOME, "USER": "hamster", "LOGNAME": "hamster"}


@functools.cache
def unavailable() -> str | None:
    """Why the sandbox cannot run on this machine, or None when it can (tried once per process)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    with tempfile.TemporaryDirectory(prefix="hamster-sandbox-") as work:
        argv = bwrap_argv(
            ["/bin/sh", "-c", "exit 0"], workspace=Path(work), network="none", layout=host_layout(), files={}
        )
        try:
            probe = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={"PATH": os.defpath})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap could not start: {exc}"
    if probe.returncode != 0:
        return f"bubblewrap refused its namespaces: {probe.stderr.strip() or probe.returncode}"
    return None


def egress_unavailable() -> str | None:
    if shutil.which("slirp4netns") is None:
        return 'network="egress" needs slirp4netns: apt-get install slirp4netns'
    return None


@dataclass
class Sandboxed:
    """A command running in the sandbox: ``proc`` is bwrap (its own session: kill its group to stop it)."""

    proc: subprocess.Popen[bytes]
    slirp: subprocess.Popen[bytes] | None
    workdir: tempfile.TemporaryDirectory[str]

    def close(self) -> None:
        if self.slirp is not None:
            with contextlib.suppress(ProcessLookupError):
                self.slirp.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.slirp.wait(timeout=5)
            if self.slirp.poll() is None:
                self.slirp.kill()
                self.slirp.wait()
        self.workdir.cleanup()


def _read_info(fd: int, deadline: float) -> dict[str, Any]:
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        with contextlib.suppress(ValueError):
            found: dict[str, Any] = json.loads(data)
            return found
    raise SandboxUnavailable(f"bubblewrap said nothing about its sandbox ({data[:200]!r})")


def _wait_ready(fd: int, deadline: float, errors: IO[bytes]) -> None:
    ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    if not ready or os.read(fd, 1) != b"1":
        errors.seek(0)
        said = errors.read().decode(errors="replace").strip()[-500:]
        raise SandboxUnavailable(
            f"slirp4netns did not set the sandbox's network up: {said or 'it said nothing'}"
        )


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    workspace: Path,
    network: Network,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.PIPE,
) -> Sandboxed:
    """Start ``command`` in the sandbox; once ``egress`` has its network, the command starts."""
    reason = unavailable() or (egress_unavailable() if network == "egress" else None)
    if reason is not None:
        raise SandboxUnavailable(reason)
    workdir = tempfile.TemporaryDirectory(prefix="hamster-sandbox-")
    files = {"/etc/passwd": "passwd", "/etc/group": "group"}
    contents = {"passwd": PASSWD, "group": GROUP}
    if network == "egress":
        files["/etc/resolv.conf"] = "resolv.conf"
        contents["resolv.conf"] = f"nameserver {SLIRP_DNS}\n"
    elif network == "host" and Path("/etc/resolv.conf").exists():
        files["/etc/resolv.conf"] = "/etc/resolv.conf"
    for name, text in contents.items():
        (Path(workdir.name) / name).write_text(text)
    binds = {inside: str(Path(workdir.name) / name) for inside, name in files.items()}
    egress = network == "egress"
    info, block = (os.pipe(), os.pipe()) if egress else (None, None)
    try:
        argv = bwrap_argv(
            command,
            workspace=workspace,
            network=network,
            layout=host_layout(),
            files=binds,
            info_fd=info[1] if info else None,
            block_fd=block[0] if block else None,
        )
        proc = subprocess.Popen(
            argv,
            env=sandbox_env(env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            pass_fds=(info[1], block[0]) if info and block else (),
            start_new_session=True,
        )
    except BaseException:
        for fd in (*(info or ()), *(block or ())):
            os.close(fd)
        workdir.cleanup()
        raise
    sandboxed = Sandboxed(proc, None, workdir)
    if info is None or block is None:
        return sandboxed
    os.close(info[1])
    os.close(block[0])
    try:
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        pid = int(_read_info(info[0], deadline)["child-pid"])
        _wait_loopback(pid, deadline)
        sandboxed.slirp = _slirp(pid, deadline)
        os.write(block[1], b"1")
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        sandboxed.close()
        if not isinstance(exc, OSError):
            raise
        said = proc.stderr.read().decode(errors="replace").strip()[-500:] if proc.stderr else ""
        raise SandboxUnavailable(f"bubblewrap ended while its network was set up: {said or exc}") from None
    finally:
        os.close(info[0])
        os.close(block[1])
    return sandboxed


def _wait_loopback(pid: int, deadline: float) -> None:
    """Wait until bwrap's child has set its loopback up (127.0.0.1 is in its routing table): slirp4netns
    configuring the namespace meanwhile makes bwrap fail ("loopback: Failed RTM_NEWADDR")."""
    fib = Path(f"/proc/{pid}/net/fib_trie")
    while time.monotonic() < deadline:
        try:
            if "127.0.0.1" in fib.read_text():
                return
        except OSError:
            raise SandboxUnavailable("bubblewrap ended before its network was set up") from None
        time.sleep(0.002)
    raise SandboxUnavailable("bubblewrap did not set its loopback up")


def _slirp(pid: int, deadline: float) -> subprocess.Popen[bytes]:
    """slirp4netns on the network namespace of ``pid``, ready: outside hosts yes, the host's loopback no."""
    ready_r, ready_w = os.pipe()
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after the wait reads it)
    try:
        slirp = subprocess.Popen(
            [
                "slirp4netns",
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                # Stay in this user namespace: bwrap's child moves on into a nested one (for --uid), and
                # from there the sandbox's network namespace, owned by the outer one, cannot be joined.
                f"--userns-path=/proc/{os.getpid()}/ns/user",
                "--ready-fd",
                str(ready_w),
                str(pid),
                "tap0",
            ],
            env={"PATH": os.defpath},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            pass_fds=(ready_w,),
            start_new_session=True,
        )
        os.close(ready_w)
        ready_w = -1
        try:
            _wait_ready(ready_r, deadline, errors)
        except BaseException:
            slirp.kill()
            slirp.wait()
            raise
        return slirp
    finally:
        errors.close()
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
