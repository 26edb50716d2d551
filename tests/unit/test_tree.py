"""The tree keeps the promises the README's map makes: pure modules do no I/O, and only adapters reach out.

A module is pure when it imports no library that talks to Kafka, HTTP, SQL, GitHub, processes or files, and
no Hamster module that does. Each concept folder's ``__init__.py`` says which of its modules are pure.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PURE = {
    "hamster.intake": ["signatures", "envelope", "github_events"],
    "hamster.subscribers": [
        "spec",
        "matching",
        "changes",
        "concurrency",
        "lane_commands",
        "schedules",
        "dispatch",
    ],
    "hamster.pipelines": ["task", "graph", "context"],
    "hamster.runs": [
        "events",
        "lifecycle",
        "next_step",
        "approvals",
        "merge_groups",
        "replay",
        "starting",
        "audit",
        "audit_checkpoints",
    ],
    "hamster.github": ["reporting", "check_actions", "forks", "app_manifest", "rate_limit"],
    "hamster.execution": ["task_env", "stage_logs", "secrets"],
}
PURE_MODULES = {f"{package}.{name}" for package, names in PURE.items() for name in names}
# Hamster's own modules a pure one may use besides the pure ones: values and rules, no I/O.
CORE = {"hamster", "hamster.errors", "hamster.ids", "hamster.json_codec", "hamster.logs", "hamster.settings"}
# Libraries that reach the outside world: brokers, HTTP, SQL, GitHub, processes, file stores, terminals.
IO_LIBRARIES = {
    "aiohttp",
    "aiokafka",
    "alembic",
    "click",
    "faust",
    "fsspec",
    "github3",
    "jinja2",
    "kafka",
    "mode",
    "requests",
    "rich",
    "sqlalchemy",
    "subprocess",
    "streams",
    "agents",
}


def imports_of(module: str) -> set[str]:
    """Every module ``module`` imports when it runs (at the top or inside functions; not what it imports
    only for type checking), as absolute dotted names."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_map_names_modules_that_exist():
    """Every module the map calls pure is there, so a rename cannot silently drop it from the checks below."""
    missing = [m for m in PURE_MODULES if not (ROOT / (m.replace(".", "/") + ".py")).is_file()]
    assert missing == []


@pytest.mark.parametrize("module", sorted(PURE_MODULES))
def test_a_pure_module_imports_no_io_and_no_adapter(module):
    """A pure module imports no I/O library, and of Hamster's own only other pure modules and the core."""
    wrong = []
    for name in imports_of(module):
        top = name.split(".")[0]
        if top in IO_LIBRARIES:
            wrong.append(name)
        elif top == "hamster" and not {name, name.rsplit(".", 1)[0]} & (CORE | PURE_MODULES | set(PURE)):
            # (its owner: ``from hamster.errors import X``; a package: ``from hamster.runs import events``)
            wrong.append(name)
    assert wrong == [], f"{module} imports {wrong}"


def test_only_the_github_adapters_import_github3():
    """github3 is imported in hamster/github's adapters and nowhere else."""
    adapters = {f"hamster.github.{name}" for name in ("session", "app", "client", "objects")}
    users = set()
    for path in [*ROOT.glob("hamster/**/*.py"), *ROOT.glob("streams/*.py"), *ROOT.glob("agents/*.py")]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if any(name.split(".")[0] == "github3" for name in imports_of(module)):
            users.add(module)
    assert users <= adapters and users


def test_no_agent_imports_another_agent():
    """Agents share plumbing through agents.plumbing alone; none imports another agent's module."""
    wrong = {}
    for path in ROOT.glob("agents/*.py"):
        module = f"agents.{path.stem}"
        names = {n for n in imports_of(module) if n.split(".")[0] == "agents"}
        others = {n for n in names if n != "agents.plumbing" and not n.startswith("agents.plumbing.")}
        if path.stem != "__init__" and others:  # the package's __init__ registers every agent
            wrong[module] = sorted(others)
    assert wrong == {}
