"""`hamster --help` lists the commands from a table, without importing them; the table stays true."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from hamster.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_line_is_the_start_of_the_commands_own_help(name):
    """The line `hamster --help` shows for a command begins its own help, and the module defines it."""
    module, line = COMMANDS[name]
    command = getattr(importlib.import_module(f"hamster.cli.{module}"), module)
    assert isinstance(command, click.Command) and command.name == name
    assert command.get_short_help_str(limit=500).startswith(line.rstrip("."))


def test_every_command_of_the_package_is_listed():
    """No command module is left out of the table (each holds a command of its own name)."""
    assert sorted(main.list_commands(click.Context(main))) == sorted(COMMANDS)


def test_listing_the_commands_imports_none_of_them():
    """`hamster --help` loads no command module, so it does not pay for Faust, github3 or SQLAlchemy."""
    probe = (
        "import contextlib, sys\n"
        "from hamster.cli import main\n"
        "with contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "heavy = ('hamster.cli.', 'faust', 'github3', 'sqlalchemy')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert all(name in out for name in COMMANDS)
    assert out.splitlines()[-1] == "[]"
