"""ledger.settings: each setting declared once gives its options, its [defaults] key and check,
the dataclasses' defaults and the table of docs/config.md."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from support.buildkit import prompts, write_jsonl

from cli import cli
from ledger import settings
from ledger.build.run import BuildOptions, build_fields
from ledger.build.shard_limits import MAX_BYTES_PER_BATCH, MAX_REQUESTS_PER_BATCH
from ledger.config import load_config
from ledger.core.store import DEFAULT_LEASE_SECONDS
from ledger.errors import InputError
from ledger.reconcile.options import ReconcileOptions
from ledger.settings.declared import MAX_BYTES_PER_BATCH as DECLARED_MAX_BYTES
from ledger.settings.declared import MAX_REQUESTS_PER_BATCH as DECLARED_MAX_REQUESTS

CONFIG_MD = Path(__file__).resolve().parents[2] / "docs" / "config.md"
TABLE = re.compile(
    r"<!-- settings table: begin .*?-->\n(.*?)<!-- settings table: end -->", re.DOTALL
)

COMMANDS = sorted({command for s in settings.SETTINGS.values() for command in s.commands})


def option_of(command: str, param: str) -> click.Option:
    found = [p for p in cli.commands[command].params if p.name == param]
    assert len(found) == 1, f"{command} has no single option {param}"
    assert isinstance(found[0], click.Option)
    return found[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_setting_is_an_option_of_each_command_it_names(command: str) -> None:
    """`ledger COMMAND` has one option per setting that names it, with the declared default."""
    for setting in settings.for_command(command):
        option = option_of(command, setting.param)
        assert setting.option in option.opts
        expected = str(setting.default) if setting.kind == "size" else setting.default
        assert option.default == expected, setting.name
        assert option.help == setting.help


def test_build_options_take_their_defaults_from_the_settings() -> None:
    """Every BuildOptions field that is a setting defaults to the declared default."""
    params = {setting.param: setting for setting in settings.SETTINGS.values()}
    built = BuildOptions()
    shared = [f.name for f in fields(BuildOptions) if f.name in params]
    # All but poll_min and max_cost (a cap recorded in the ledger, not a build option).
    assert len(shared) == len(settings.for_command("submit")) - 2
    for name in shared:
        assert getattr(built, name) == params[name].default, name


def test_reconcile_options_agree_with_the_settings() -> None:
    """ReconcileOptions' defaults are the declared ones (poll_min, concurrency, lease, ...)."""
    options = ReconcileOptions()
    for setting in settings.for_command("reconcile"):
        if setting.name != "interval":
            assert getattr(options, setting.param) == setting.default, setting.name


def test_declared_limits_are_the_builds_and_the_stores() -> None:
    """The batch limits and the lease length declared here are the build's and the store's."""
    assert (DECLARED_MAX_REQUESTS, DECLARED_MAX_BYTES) == (
        MAX_REQUESTS_PER_BATCH,
        MAX_BYTES_PER_BATCH,
    )
    assert settings.default("lease_seconds") == DEFAULT_LEASE_SECONDS


OUT_OF_RANGE = {
    "concurrency 0": (["reconcile", "--concurrency", "0"], "--concurrency: must be at least 1"),
    "interval below 0": (["reconcile", "--interval", "-1"], "--interval: must be at least 0"),
    "interval nan": (["reconcile", "--interval", "nan"], "--interval: must be a finite number"),
    "interval inf": (["reconcile", "--interval", "inf"], "--interval: must be a finite number"),
    "lease 0": (["reconcile", "--lease-seconds", "0"], "--lease-seconds: must be more than 0"),
    "poll_min below 0": (["reconcile", "--poll-min", "-0.5"], "--poll-min: must be at least 0"),
    "retry poll_min": (["retry", "r", "--poll-min", "-1"], "--poll-min: must be at least 0"),
    "max_requests": (
        ["submit", "rows.jsonl", "--max-requests", "50001"],
        "--max-requests: must be between 1 and 50000",
    ),
    "max_bytes": (
        ["submit", "rows.jsonl", "--max-bytes", "1GB"],
        "--max-bytes: must be between 1 and 200000000",
    ),
    "temperature": (
        ["submit", "rows.jsonl", "--temperature", "2.5"],
        "--temperature: must be between 0 and 2",
    ),
}


@pytest.mark.parametrize("case", OUT_OF_RANGE, ids=str)
def test_an_option_out_of_range_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    """A value a setting refuses on the command line: one line naming the option, exit 2, and
    no ledger created."""
    args, message = OUT_OF_RANGE[case]
    write_jsonl("rows.jsonl", prompts(1))
    result = CliRunner().invoke(cli, args)
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    assert not (tmp_path / "ledger.db").exists()


BAD_DEFAULTS = {
    "concurrency 0": ("concurrency = 0", "defaults.concurrency: must be at least 1"),
    "interval nan": ("interval = nan", "defaults.interval: must be a finite number"),
    "lease 0": ("lease_seconds = 0", "defaults.lease_seconds: must be more than 0"),
    "poll_min below 0": ("poll_min = -1", "defaults.poll_min: must be at least 0"),
    "not a size": ('max_bytes = "lots"', "defaults.max_bytes: 'lots' is not a size"),
    "too big a size": ('max_bytes = "1GB"', "defaults.max_bytes: must be between 1 and"),
}


@pytest.mark.parametrize("case", BAD_DEFAULTS, ids=str)
def test_a_default_out_of_range_is_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    """A value a setting refuses in [defaults]: one line naming file and key, exit 2, whatever
    the command."""
    line, message = BAD_DEFAULTS[case]
    Path("ledger.toml").write_text(f"[defaults]\n{line}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: ledger.toml: {message}")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "ledger.db").exists()


def test_a_setting_shared_by_commands_is_a_default_of_each() -> None:
    """[defaults] poll_min sets --poll-min of submit, send, retry and reconcile alike."""
    Path("ledger.toml").write_text("[defaults]\npoll_min = 42\n", encoding="utf-8")
    assert load_config().command_defaults() == {
        "submit": {"poll_min": 42},
        "send": {"poll_min": 42},
        "retry": {"poll_min": 42},
        "reconcile": {"poll_min": 42},
    }
    for command in (["submit", "--help"], ["retry", "--help"], ["reconcile", "--help"]):
        result = CliRunner().invoke(cli, command)
        assert "[default: 42; at least 0]" in " ".join(result.stdout.split()), command


def test_python_values_are_checked_by_the_same_rules() -> None:
    """settings.check refuses what the option would, naming the parameter; other names pass."""
    settings.check({"concurrency": 4, "jitter": 0.0, "json_mode": True, "max_bytes": "64MiB"})
    with pytest.raises(InputError, match=r"^concurrency: must be at least 1$"):
        settings.check({"concurrency": 0})
    with pytest.raises(InputError, match=r"^poll_max: must be a finite number$"):
        settings.check({"poll_max": float("inf")})


def test_values_become_dataclass_fields() -> None:
    """build_fields reads a system @FILE and a schema file, parses sizes and makes paths Paths."""
    Path("system.txt").write_text("Be brief.", encoding="utf-8")
    Path("schema.json").write_text('{"type": "object"}', encoding="utf-8")
    converted = build_fields(
        {"system": "@system.txt", "json_schema": "schema.json", "max_bytes": "2kB", "workdir": "w"}
    )
    assert converted["system"] == "Be brief."
    assert converted["json_schema"].name == "schema"
    assert (converted["max_bytes"], converted["workdir"]) == (2000, Path("w"))
    assert BuildOptions(**converted).max_bytes == 2000


def test_the_table_in_docs_config_is_current() -> None:
    """docs/config.md's settings table is the generated one (`python docs/cli_reference.py`
    rewrites it)."""
    found = TABLE.search(CONFIG_MD.read_text(encoding="utf-8"))
    assert found, "docs/config.md has no settings table markers"
    assert found.group(1) == settings.markdown_table(), "run: python docs/cli_reference.py"


def test_the_table_has_a_row_per_setting() -> None:
    """Each setting is one row: key, option, commands, value, default, help."""
    rows = settings.markdown_table().splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == [f"| `{n}`" for n in settings.SETTINGS]
    assert "| `concurrency` | `--concurrency` | reconcile | integer, at least 1 | `16` |" in (
        settings.markdown_table()
    )
