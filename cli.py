"""The `ledger` command: a thin click shell over the `ledger` library.

Each command's docstring is its `--help`. Commands parse options, call one library function and
print; anything that decides or writes lives in `ledger/`.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import click

from ledger.commands import read, retry, run, tools
from ledger.errors import LedgerError


class LedgerGroup(click.Group):
    """The one place errors meet exit codes: every LedgerError (the library's errors a user can
    cause) is printed as one line on stderr, `error: <message>`, and ends the command with its
    class's exit code (1 a provider or runtime failure, 2 the user's input or configuration).
    With --debug (or LEDGER_DEBUG=1) the traceback comes first. Any other exception is a bug
    and propagates with its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as error:
            if ctx.params.get("debug"):
                traceback.print_exc()
            click.echo(f"error: {_one_line(error)}", err=True)
            ctx.exit(error.exit_code)


def _one_line(error: BaseException) -> str:
    """The error's message on a single line (a database or SDK message may span several)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


@click.group(cls=LedgerGroup)
@click.option(
    "--db",
    envvar="LEDGER_DB",
    default=None,
    metavar="PATH|URL",
    help="Ledger database: SQLite path or SQLAlchemy URL (default ./ledger.db, or $LEDGER_DB).",
)
@click.option(
    "--config",
    "config_path",
    envvar="LEDGER_CONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Settings file (default ./ledger.toml when present, or $LEDGER_CONFIG); "
    "see docs/config.md.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="LEDGER_DEBUG",
    help="Show the traceback of an error, not just its one line (or $LEDGER_DEBUG=1).",
)
@click.version_option(package_name="llm-batch-ledger")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config_path: Path | None, debug: bool) -> None:
    """A crash-safe, queryable ledger for LLM batch jobs.

    Exit codes: 0 success, 1 a provider or runtime failure, 2 bad input or configuration.
    """
    from ledger.config import load_config

    config = load_config(config_path)
    ctx.obj = {"db": db, "config": config}
    # The file's [defaults] become the options' defaults; an option given on the line wins.
    ctx.default_map = config.command_defaults()


# The commands live beside the library, a module per kind (ledger/commands/); cli.py is the group.
for _module in (read, run, retry, tools):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="ledger")


if __name__ == "__main__":
    sys.exit(main())
