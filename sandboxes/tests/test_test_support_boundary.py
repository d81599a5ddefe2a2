"""Test support stays out of the shipped code: no production module imports `testsupport`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("agents", "sandboxes", "logs", "studio", "agent_runtime")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_shipped_module_imports_test_support():
    offenders = [
        str(path.relative_to(ROOT))
        for package in SHIPPED
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts
        and any(name.split(".")[0] == "testsupport" for name in _imports(path))
    ]

    assert offenders == []


def test_the_e2b_double_is_not_in_the_shipped_packages():
    assert not (ROOT / "sandboxes" / "backends" / "e2b_double").exists()
