"""A faithful fake GitHub API for tests: see ``server.FakeGitHub``."""

from tests.fakegithub.server import FakeGitHub, Recorded

__all__ = ["FakeGitHub", "Recorded"]
