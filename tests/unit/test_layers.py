"""The arrows of ARCHITECTURE.md that import-linter cannot see: cli.py is a module, not a package,
so nothing may import it, and the contracts in pyproject.toml must name every package of ledger."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_library_module_imports_the_cli() -> None:
    """cli.py sits on top: ledger/ and adapters/ never import it."""
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("ledger", "adapters")
        for path in (ROOT / folder).rglob("*.py")
        if "cli" in imported_modules(path)
    ]
    assert offenders == []


def test_every_ledger_package_is_placed_in_the_layers() -> None:
    """Each package under ledger/ is named by a contract (a new folder must choose its layer)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    named = " ".join(
        " ".join(contract.get("layers", []) + contract.get("source_modules", []))
        for contract in contracts
    )
    packages = sorted(
        f"ledger.{path.parent.name}"
        for path in (ROOT / "ledger").glob("*/__init__.py")
        if path.parent.name != "chat"  # chat.batch is placed; chat.types is shared vocabulary
    )
    missing = [name for name in packages if name not in named]
    assert missing == []
