"""Writes the generated parts of the docs from the code that defines them:

- docs/cli.md, the CLI reference: every command and subcommand of `ledger`, with its help and
  every option's help and default, read from the click commands (cli.py and ledger/commands/);
- the settings table of docs/config.md (between its marker comments), from ledger.settings.

    python docs/cli_reference.py           # rewrite both
    python docs/cli_reference.py --check   # exit 1 if either is stale

tests/unit/test_cli_reference.py and tests/unit/test_settings.py fail when a file is stale.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import click

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from cli import cli  # noqa: E402
from ledger import settings  # noqa: E402
from ledger.settings.budget import budget_markdown_table  # noqa: E402
from ledger.settings.setting import Setting  # noqa: E402

CLI_MD = DOCS / "cli.md"
CONFIG_MD = DOCS / "config.md"
SETTINGS_TABLE = re.compile(
    r"(<!-- settings table: begin .*?-->\n)(.*?)(<!-- settings table: end -->)", re.DOTALL
)
BUDGET_TABLE = re.compile(
    r"(<!-- budget table: begin .*?-->\n)(.*?)(<!-- budget table: end -->)", re.DOTALL
)

HEADER = """# CLI reference

Every command of `ledger`, its options and their defaults, generated from the commands
themselves by `python docs/cli_reference.py` (do not edit by hand: a test fails when this file
is stale). Every command also takes `--help`. Options that are settings can take their default
from `[defaults]` in `ledger.toml` ([config.md](config.md)); the command line wins.
"""


def commands(
    command: click.Command, name: str = "ledger", parent: click.Context | None = None
) -> list[tuple[str, click.Command, click.Context]]:
    """The command and every subcommand under it, depth first, in click's (sorted) order."""
    ctx = click.Context(command, info_name=name.split()[-1], parent=parent)
    found = [(name, command, ctx)]
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None:
                found.extend(commands(sub, f"{name} {sub_name}", ctx))
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(option: click.Option) -> str:
    """The default as the table shows it: a value in backticks, a description as text."""
    setting: Setting | None = getattr(option, "setting", None)
    if setting is not None and setting.kind != "bool":
        if setting.default_text is not None:
            return setting.default_text
        shown = setting.shown_default()
        return f"`{shown}`" if shown else ""
    if option.is_flag and not option.secondary_opts:
        return ""
    if option.is_flag:
        return f"`{(option.opts if option.default else option.secondary_opts)[0]}`"
    # click 8.2+ marks "no default given" with a sentinel of its own.
    if option.default is None or option.multiple or repr(option.default) == "Sentinel.UNSET":
        return ""
    return f"`{option.default}`"


def _meaning(option: click.Option) -> str:
    setting: Setting | None = getattr(option, "setting", None)
    text = option.help or ""
    if setting is not None and setting.accepts is not None:
        text = f"{text.removesuffix('.')} ({setting.accepts.describe()})."
    return text


def command_section(name: str, command: click.Command, ctx: click.Context) -> str:
    """One command's heading, usage line, help and table of options."""
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines = [f"## `{name}`", "", f"`{usage}`", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help), ""]
    rows = []
    help_option = command.get_help_option(ctx)
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param is help_option:
            continue
        record = param.get_help_record(ctx)
        spec = record[0] if record else ", ".join(param.opts)
        rows.append(f"| `{_cell(spec)}` | {_cell(_default(param))} | {_cell(_meaning(param))} |")
    if rows:
        lines += ["| option | default | meaning |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(lines)


def reference() -> str:
    """The whole of docs/cli.md."""
    sections = [command_section(*found) for found in commands(cli)]
    return HEADER + "\n" + "\n".join(sections)


def config_with_current_table(text: str) -> str:
    """docs/config.md's text with the settings and budget tables between their markers
    regenerated."""
    if not SETTINGS_TABLE.search(text):
        raise SystemExit("docs/config.md: no settings table markers")
    if not BUDGET_TABLE.search(text):
        raise SystemExit("docs/config.md: no budget table markers")
    table = settings.markdown_table()
    text = SETTINGS_TABLE.sub(lambda m: m.group(1) + table + m.group(3), text)
    budget = budget_markdown_table()
    return BUDGET_TABLE.sub(lambda m: m.group(1) + budget + m.group(3), text)


def stale(docs: Path = DOCS) -> dict[Path, str]:
    """The generated files under `docs` that differ from what they should be, with that text."""
    cli_md, config_md = docs / CLI_MD.name, docs / CONFIG_MD.name
    wanted = {
        cli_md: reference(),
        config_md: config_with_current_table(config_md.read_text(encoding="utf-8")),
    }
    return {
        path: text
        for path, text in wanted.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    }


def main() -> None:
    outdated = stale()
    if "--check" in sys.argv[1:]:
        for path in outdated:
            print(f"stale: {path.relative_to(DOCS.parent)} (run: python docs/cli_reference.py)")
        raise SystemExit(1 if outdated else 0)
    for path, text in outdated.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
