"""`ledger` starts without loading what its command does not need: `import cli` and `--help`
load neither the emulator, the provider SDKs nor the database layer (bench/startup.py times it)."""

from __future__ import annotations

import json
import os
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


def modules_loaded_by(*args: str, cwd: Path = ROOT) -> set[str]:
    """The modules a fresh interpreter has loaded after `ledger ARGS` (none: `import cli`)."""
    code = "import json, sys, cli; print(json.dumps(sorted(sys.modules)))"
    command = [sys.executable, "-c", LOADED_BY if args else code, *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LEDGER_DB", None)
    env.pop("LEDGER_CONFIG", None)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=True)
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


def test_status_on_sqlite_loads_neither_the_orm_postgresql_nor_the_build(tmp_path: Path) -> None:
    """`ledger status` over a SQLite ledger reads the ledger only: SQLAlchemy's ORM (the tables
    are Core), its PostgreSQL dialect (some 20 ms of start-up) and the build's modules stay
    unloaded."""
    subprocess.run(
        [sys.executable, "-c", "from cli import main; main()", "init"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=True,
    )
    loaded = modules_loaded_by("status", cwd=tmp_path)
    assert "sqlalchemy" in loaded and "ledger.query.report" in loaded
    unwanted = (
        "sqlalchemy.orm",
        "sqlalchemy.dialects.postgresql",
        "ledger.build",
        "ledger.emulator",
    )
    assert heavy_among(loaded, unwanted) == []


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
