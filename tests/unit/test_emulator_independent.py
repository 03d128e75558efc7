"""The emulator stands alone: no module of ledger.emulator imports the rest of ledger, or the
adapters, so it can never fake a provider by reusing the code it is meant to test."""

from __future__ import annotations

import ast
from pathlib import Path

import ledger.emulator

EMULATOR_DIR = Path(ledger.emulator.__file__).resolve().parent
PACKAGE = "ledger.emulator"


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The dotted name of everything `source` (the text of `module`) imports: `import a.b` gives
    `a.b`, `from a import b` gives `a.b`, relative imports resolved. Imports inside functions and
    `if TYPE_CHECKING:` blocks count too."""
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package_parts[: len(package_parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def forbidden(name: str) -> bool:
    """An import the emulator may not make: ledger outside ledger.emulator, or adapters."""
    top = name.split(".")[0]
    if top == "adapters":
        return True
    return top == "ledger" and not (name == PACKAGE or name.startswith(PACKAGE + "."))


def emulator_modules() -> dict[str, Path]:
    """Dotted name -> file of every module in the emulator package."""
    modules = {}
    for path in sorted(EMULATOR_DIR.rglob("*.py")):
        parts = path.relative_to(EMULATOR_DIR).with_suffix("").parts
        dotted = ".".join((PACKAGE, *parts))
        modules[dotted.removesuffix(".__init__")] = path
    return modules


def test_the_import_walk_catches_the_imports_it_forbids() -> None:
    """Plain, from, relative, lazy and type-checking imports are all seen, and judged."""
    source = """
from __future__ import annotations
import json
import ledger
from typing import TYPE_CHECKING
from ledger.emulator.config import EmulatorConfig
from . import store
from .. import errors
from ledger import settings
if TYPE_CHECKING:
    from adapters.base import BatchProvider
def later():
    import ledger.core.db
"""
    found = imported_names(source, "ledger.emulator.routes")
    assert {"json", "ledger.emulator.config.EmulatorConfig", "ledger.emulator.store"} <= found
    assert sorted(name for name in found if forbidden(name)) == [
        "adapters.base.BatchProvider",
        "ledger",
        "ledger.core.db",
        "ledger.errors",
        "ledger.settings",
    ]


def test_the_emulator_imports_nothing_from_the_rest_of_ledger_or_from_adapters() -> None:
    """No emulator module imports ledger outside ledger.emulator, or adapters."""
    modules = emulator_modules()
    assert "ledger.emulator.server" in modules
    offenders = {}
    for dotted, path in modules.items():
        source = path.read_text(encoding="utf-8")
        names = imported_names(source, dotted, is_package=path.name == "__init__.py")
        if bad := sorted(name for name in names if forbidden(name)):
            offenders[dotted] = bad
    assert offenders == {}
