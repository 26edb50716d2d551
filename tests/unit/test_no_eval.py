"""No code of Hamster's evaluates strings: no eval, exec or compile anywhere in the package source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hamster", "streams", "agents")
FORBIDDEN = {"eval", "exec", "compile", "__import__"}


def evaluating_calls(source: str) -> list[str]:
    """Calls of eval/exec/compile/__import__, by bare name or via ``builtins`` (``re.compile`` is fine)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            name = func.id
        elif (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "builtins"
        ):
            name = func.attr
        else:
            continue
        if name in FORBIDDEN:
            found.append(f"{name}() at line {node.lineno}")
    return found


def test_the_checker_finds_what_it_looks_for():
    """The checker sees eval, exec and builtins.eval calls (so an empty result below means something)."""
    assert len(evaluating_calls("eval(x)\nexec('y')\nimport builtins\nbuiltins.eval(z)\n")) == 3
    assert evaluating_calls("evaluate(x)\nre.compile('a+')\n") == []


def test_no_package_module_evaluates_strings():
    """Subscriber criteria are data and named predicates, never strings handed to eval."""
    files = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 20
    offenders = {
        str(path.relative_to(ROOT)): calls for path in files if (calls := evaluating_calls(path.read_text()))
    }
    assert offenders == {}
