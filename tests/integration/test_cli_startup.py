"""`ledger` starts without loading what its command does not need: `import cli` and `--help`
load neither the emulator, the provider SDKs nor the database layer (bench/startup.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Packages the start of `ledger` must not import.
HEAVY = ("ledger.emulator", "openai", "anthropic", "httpx", "sqlalchemy", "alembic", "tiktoken")

LOADED_BY = """
import json, sys
from cli import cli
try:
    cli(sys.argv[1:], prog_name="ledger")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by(*args: str) -> set[str]:
    """The modules a fresh interpreter has loaded after `ledger ARGS` (none: `import cli`)."""
    code = "import json, sys, cli; print(json.dumps(sorted(sys.modules)))"
    command = [sys.executable, "-c", LOADED_BY if args else code, *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def heavy_among(modules: set[str], packages: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.mark.parametrize("args", [(), ("--help",)], ids=["import cli", "ledger --help"])
def test_starting_ledger_loads_no_emulator_sdk_or_database(args: tuple[str, ...]) -> None:
    """`import cli` and `ledger --help` load click and the settings, nothing heavy."""
    loaded = modules_loaded_by(*args)
    assert "click" in loaded and "ledger.settings" in loaded
    assert heavy_among(loaded) == []


@pytest.mark.parametrize("command", ["submit", "reconcile", "emulator"])
def test_a_commands_help_loads_no_emulator_or_sdk(command: str) -> None:
    """`ledger COMMAND --help` reads ledger.toml but loads neither the emulator nor an SDK."""
    loaded = modules_loaded_by(command, "--help")
    assert "ledger.config" in loaded
    assert heavy_among(loaded, ("ledger.emulator", "openai", "anthropic")) == []


def test_the_reference_script_runs_on_its_own() -> None:
    """`python docs/cli_reference.py --check` finds the committed docs current (exit 0)."""
    result = subprocess.run(
        [sys.executable, "docs/cli_reference.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
