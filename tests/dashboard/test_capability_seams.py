"""The dashboard and the warehouse meet other capabilities only through core, the
database and the queue (issue 16 item 11): no module of theirs imports another
capability's package (the dashboard reads live metrics through core.live_metrics and
starts ETL runs through the warehouse's own endpoint)."""

from __future__ import annotations

import ast
from importlib import resources

import pytest

from mysetlist.capabilities import CAPABILITIES


def _imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("capability", ["dashboard", "warehouse"])
def test_imports_only_core_and_itself(capability: str) -> None:
    others = {f"mysetlist.{c}" for c in CAPABILITIES if c != capability}
    package = resources.files(f"mysetlist.{capability}")
    offending: list[str] = []
    pending = [package]
    while pending:
        folder = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append(entry)
            elif entry.name.endswith(".py"):
                for module in _imported_modules(entry.read_text(encoding="utf-8")):
                    if any(module == o or module.startswith(o + ".") for o in others):
                        offending.append(f"{entry.name}: {module}")
    assert offending == []
