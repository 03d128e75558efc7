"""Every setting of `ledger submit`, `ledger retry` and `ledger reconcile`, declared once.

A setting is a value with a default that a user may want to fix for a whole project: each one
can be given on the command line (`--max-output-tokens 200`), in `[defaults]` of ledger.toml
(`max_output_tokens = 200`) or to the Python API (`Ledger.submit(max_output_tokens=200)`); the
first of those wins, then the built-in default. Each is declared once, in
ledger/settings/declared.py (what a declaration holds: ledger/settings/setting.py), and from
that declaration come:

- the click options of each command: `@settings.options("reconcile")`;
- the checks of `[defaults]` in ledger.toml (`ledger.config`): key, type and range;
- the defaults the option dataclasses take: `settings.default("poll_min")`;
- the table of docs/config.md: `settings.markdown_table()` (kept current by a test).

A value out of range is an InputError naming where it came from (`--concurrency: must be at
least 1`, `ledger.toml: defaults.concurrency: ...`): one line, exit code 2.

This package imports only the standard library (and click, when options are made), so the CLI
can declare its options without loading the rest of ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ledger.settings.declared import SETTINGS
from ledger.settings.setting import F, Range, Setting, parse_size

__all__ = [
    "SETTINGS",
    "Range",
    "Setting",
    "as_fields",
    "check",
    "default",
    "for_command",
    "markdown_table",
    "options",
]


def default(name: str) -> Any:
    """The built-in default of setting `name` (for the option dataclasses' fields)."""
    return SETTINGS[name].default


def for_command(command: str) -> list[Setting]:
    """The settings `command` takes, in declaration order."""
    return [setting for setting in SETTINGS.values() if command in setting.commands]


def options(command: str) -> Callable[[F], F]:
    """A decorator adding the click options of every setting `command` takes."""

    def decorate(function: F) -> F:
        # click lists options in the order their decorators are written, i.e. applied last.
        for setting in reversed(for_command(command)):
            function = setting.click_option()(function)
        return function

    return decorate


def check(values: Mapping[str, Any]) -> None:
    """InputError for the first value, by parameter name, that a setting refuses (the Python
    API's arguments; names that are no setting are left to the dataclass)."""
    by_param = {setting.param: setting for setting in SETTINGS.values()}
    for param, value in values.items():
        setting = by_param.get(param)
        if setting is not None:
            setting.check(value, param)


def as_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Setting values by parameter name, as given on the command line or in ledger.toml, turned
    into what the option dataclasses take: `system` @FILE read, `json_schema` read, `max_bytes`
    with a unit parsed, paths as Path."""
    fields = dict(values)
    system = fields.get("system")
    if isinstance(system, str):
        from ledger.build.bodies import read_system_option

        fields["system"] = read_system_option(system)
    schema = fields.get("json_schema")
    if isinstance(schema, str | Path):
        from ledger.build.bodies import read_json_schema

        fields["json_schema"] = read_json_schema(schema)
    if isinstance(fields.get("max_bytes"), str):
        fields["max_bytes"] = parse_size(fields["max_bytes"])
    for name in ("workdir", "prices"):
        if isinstance(fields.get(name), str):
            fields[name] = Path(fields[name])
    return fields


def markdown_table() -> str:
    """The settings as the markdown table of docs/config.md."""
    lines = [
        "| `[defaults]` key | option | commands | value | default | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for setting in SETTINGS.values():
        option = setting.flag.replace("/", " / ") if setting.flag else setting.option
        value = _KIND_WORDS[setting.kind]
        if setting.accepts is not None:
            value += f", {setting.accepts.describe()}"
        if setting.default_text is not None:
            shown = setting.default_text
        else:
            shown = f"`{setting.shown_default()}`" if setting.shown_default() else "none"
        cells = [
            f"`{setting.name}`",
            f"`{option}`",
            ", ".join(setting.commands),
            value,
            shown,
            setting.help,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_KIND_WORDS = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "true/false",
    "path": "path",
    "size": 'bytes, or text like `"150MB"`',
}
