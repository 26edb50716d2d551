"""The sandbox's plan: which namespaces, which host paths, which network, for a shell stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from hamster.execution.sandbox import Entry, bwrap_argv, host_layout

LAYOUT = (Entry("/usr"), Entry("/bin", "usr/bin"), Entry("/etc/ssl"))


def plan(network="egress", **kwargs):
    return bwrap_argv(
        ["/bin/sh", "-c", "make test"],
        workspace=Path("/srv/hamster/workspaces/run-1"),
        network=network,
        layout=LAYOUT,
        files={"/etc/passwd": "/tmp/x/passwd"},
        **kwargs,
    )


def pairs(argv, flag):
    return [tuple(argv[i + 1 : i + 3]) for i, arg in enumerate(argv) if arg == flag]


def test_the_command_gets_namespaces_of_its_own_and_dies_with_the_worker():
    """User, PID, IPC, UTS and cgroup namespaces, a new session, no capabilities, an unprivileged uid."""
    argv = plan()
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"):
        assert flag in argv
    assert "--new-session" in argv and argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--uid") + 1] == "1000"
    assert argv[-4:] == ["--", "/bin/sh", "-c", "make test"]


def test_only_the_workspace_is_bound_writable_and_the_rest_is_read_only():
    """The workspace is the one --bind; system paths are read-only or symlinks; /proc is its own; the root
    is read-only once set up."""
    argv = plan()
    assert pairs(argv, "--bind") == [("/srv/hamster/workspaces/run-1", "/srv/hamster/workspaces/run-1")]
    assert set(pairs(argv, "--ro-bind")) == {
        ("/usr", "/usr"),
        ("/etc/ssl", "/etc/ssl"),
        ("/tmp/x/passwd", "/etc/passwd"),
    }
    assert ("usr/bin", "/bin") in pairs(argv, "--symlink")
    assert argv[argv.index("--proc") + 1] == "/proc"
    assert argv[argv.index("--chdir") + 1] == "/srv/hamster/workspaces/run-1"
    assert argv[argv.index("--remount-ro") + 1] == "/"


@pytest.mark.parametrize(("network", "own_net"), [("none", True), ("egress", True), ("host", False)])
def test_the_network_is_its_own_unless_the_stage_asks_for_the_hosts(network, own_net):
    """none and egress get a network namespace of their own (egress then gets slirp4netns); host shares."""
    assert ("--unshare-net" in plan(network)) is own_net


def test_egress_waits_for_its_network_before_the_command_starts():
    """bwrap says its child's pid on the info fd and waits on the block fd until slirp4netns is ready."""
    argv = plan(info_fd=5, block_fd=6)
    assert argv[argv.index("--info-fd") + 1] == "5" and argv[argv.index("--block-fd") + 1] == "6"


def test_an_unknown_network_is_refused():
    """A typo in network= never means "host"."""
    with pytest.raises(ValueError, match="network"):
        plan("hots")


def test_the_host_layout_shows_no_secret_place(tmp_path):
    """The mirrored host paths are /usr, its siblings and a few /etc files: never /etc as a whole, /root,
    /home, /proc of the host or HAMSTER_HOME."""
    (tmp_path / "usr").mkdir()
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ssl").mkdir()
    (tmp_path / "etc" / "shadow").write_text("root:x")
    (tmp_path / "root").mkdir()
    layout = host_layout(tmp_path)
    assert Entry("/bin", "usr/bin") in layout and Entry("/etc/ssl") in layout
    paths = {entry.path for entry in layout}
    assert not paths & {"/etc", "/etc/shadow", "/root", "/home", "/proc", "/var"}
