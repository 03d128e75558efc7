"""docs/cli.md, the CLI reference, is generated from the click commands and kept current; every
command and every option documents itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import click
import pytest
from click.testing import CliRunner

from cli import cli

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "cli_reference.py"


def load_generator() -> ModuleType:
    """docs/cli_reference.py as a module (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location("cli_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = load_generator()
COMMANDS = generator.commands(cli)


def test_docs_cli_md_is_current() -> None:
    """docs/cli.md is exactly what `python docs/cli_reference.py` writes."""
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == generator.reference(), "run: python docs/cli_reference.py"


@pytest.mark.parametrize(("name", "command", "ctx"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_has_help_and_a_section(
    name: str, command: click.Command, ctx: click.Context
) -> None:
    """Each command and subcommand has help text: its docstring, shown by --help and in the
    reference."""
    assert command.help and len(command.help.strip()) > 10, name
    result = CliRunner().invoke(cli, [*name.split()[1:], "--help"], catch_exceptions=False)
    first_line = " ".join(command.help.strip().splitlines()[0].split())
    assert result.exit_code == 0 and first_line in " ".join(result.stdout.split())
    assert f"## `{name}`\n" in generator.reference()


@pytest.mark.parametrize(("name", "command", "ctx"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_option_has_help_in_the_reference(
    name: str, command: click.Command, ctx: click.Context
) -> None:
    """Each option of each command has help text, and its row in the reference shows it."""
    section = generator.command_section(name, command, ctx)
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]} has no help"
            assert param.opts[-1] in section and " ".join(param.help.split()[:3]) in section


def test_the_reference_shows_defaults_and_ranges() -> None:
    """Defaults of plain options and of settings appear, with a setting's range."""
    reference = generator.reference()
    assert "| `--limit INTEGER` | `50` | How many events. |" in reference
    assert "| `--concurrency INTEGER` | `16` | Jobs this process steps at once (at least 1). |" in (
        reference
    )
    assert "| `--count-tokens / --no-count-tokens` | `--count-tokens` |" in reference


def test_stale_names_each_file_that_differs(tmp_path: Path) -> None:
    """A hand-edited cli.md or settings table is found stale, with its regenerated text."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cli.md").write_text(generator.reference(), encoding="utf-8")
    config = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    (docs / "config.md").write_text(config, encoding="utf-8")
    assert generator.stale(docs) == {}
    (docs / "cli.md").write_text(generator.reference() + "edited\n", encoding="utf-8")
    edited = config.replace("| `concurrency` | `--concurrency` |", "| `concurrency` | `-c` |")
    (docs / "config.md").write_text(edited, encoding="utf-8")
    assert generator.stale(docs) == {
        docs / "cli.md": generator.reference(),
        docs / "config.md": config,
    }
