"""Every setting of `ledger submit`, `ledger retry` and `ledger reconcile`, declared once.

A setting is a value with a default that a user may want to fix for a whole project: each one
can be given on the command line (`--max-output-tokens 200`), in `[defaults]` of ledger.toml
(`max_output_tokens = 200`) or to the Python API (`Ledger.submit(max_output_tokens=200)`); the
first of those wins, then the built-in default. From the one declaration below come:

- the click options of each command: `@settings.options("reconcile")`;
- the checks of `[defaults]` in ledger.toml (`ledger.config`): key, type and range;
- the defaults the option dataclasses take: `settings.default("poll_min")`;
- the table of docs/config.md: `settings.markdown_table()` (kept current by a test).

A value out of range is an InputError naming where it came from (`--concurrency: must be at
least 1`, `ledger.toml: defaults.concurrency: ...`): one line, exit code 2.

This module imports only the standard library (and click, when options are made), so the CLI
can declare its options without loading the rest of ledger.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from ledger.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

#: The OpenAI Batch API's limits per batch (ledger.build.shards holds them; a test keeps these
#: equal, so that this module need not import the build).
MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 200_000_000


@dataclass(frozen=True)
class Range:
    """The numbers a setting accepts; floats must also be finite."""

    minimum: float | None = None
    maximum: float | None = None
    #: The minimum itself is refused (`lease_seconds > 0`).
    above: bool = False

    def problem(self, value: float) -> str | None:
        """What is wrong with `value`, or None."""
        if isinstance(value, float) and not math.isfinite(value):
            return "must be a finite number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and not low <= value <= high:
            return f"must be between {_number(low)} and {_number(high)}"
        if low is not None and self.above and value <= low:
            return f"must be more than {_number(low)}"
        if low is not None and value < low:
            return f"must be at least {_number(low)}"
        return None

    def describe(self) -> str:
        """`at least 1`, `more than 0` or `0 to 2`, for --help and the docs."""
        if self.minimum is not None and self.maximum is not None:
            return f"{_number(self.minimum)} to {_number(self.maximum)}"
        return f"{'more than' if self.above else 'at least'} {_number(self.minimum or 0)}"


@dataclass(frozen=True)
class Setting:
    """One setting: its `[defaults]` key, option, value, default, help and where it applies."""

    #: The `[defaults]` key; the option is `--` and this with `-` for `_`.
    name: str
    #: `int`, `float`, `str`, `bool`, `path` (a file, relative to ledger.toml when given
    #: there) or `size` (bytes, or text like `150MB`).
    kind: str
    default: Any
    help: str
    #: The commands that take it as an option.
    commands: tuple[str, ...]
    #: The parameter and dataclass field it sets, when not `name` (`json` sets `json_mode`).
    field: str = ""
    #: The option's declaration, when not `--name` (`--count-tokens/--no-count-tokens`).
    flag: str = ""
    metavar: str | None = None
    #: What a default of None means, shown in --help and the docs.
    default_text: str | None = None
    #: The environment variable the library falls back to when the setting is not given.
    env: str | None = None
    accepts: Range | None = None

    @property
    def param(self) -> str:
        """The keyword this setting is passed as (click parameter, dataclass field)."""
        return self.field or self.name

    @property
    def option(self) -> str:
        """The long option, e.g. `--max-output-tokens`."""
        return "--" + self.name.replace("_", "-")

    def toml_types(self) -> tuple[type, ...]:
        """The TOML values `[defaults]` accepts for it."""
        return _TOML_TYPES[self.kind]

    def problem(self, value: Any) -> str | None:
        """What is wrong with a value of the right type, or None."""
        if value is None or self.accepts is None:
            return None
        if self.kind == "size" and isinstance(value, str):
            try:
                value = parse_size(value)
            except InputError:
                return f"{value!r} is not a size (try 100MB)"
        return self.accepts.problem(value)

    def check(self, value: Any, where: str) -> None:
        """InputError `<where>: <problem>` when `value` is out of range."""
        problem = self.problem(value)
        if problem is not None:
            raise InputError(f"{where}: {problem}")

    def shown_default(self) -> str:
        """The default as --help and the docs show it ('' for none)."""
        if self.env is not None:
            return f"${self.env}"
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default is False:
            return ""
        if self.default is True:
            return "on"
        return _number(self.default) if isinstance(self.default, float) else str(self.default)

    def click_option(self) -> Callable[[F], F]:
        """The click option for this setting."""
        import click

        declaration = self.flag or self.option
        extra: dict[str, Any] = {"show_default": True}
        if self.kind == "bool":
            if "/" not in declaration:
                extra["is_flag"] = True
        else:
            extra["type"] = _CLICK_TYPES[self.kind]()
        # Sizes are parsed with their unit when the options become BuildOptions.
        default = str(self.default) if self.kind == "size" else self.default
        return click.option(
            declaration,
            self.param,
            cls=_option_class(),
            setting=self,
            default=default,
            help=self.help,
            metavar=self.metavar,
            callback=self._click_callback,
            **extra,
        )

    def _click_callback(self, _ctx: Any, _param: Any, value: Any) -> Any:
        self.check(value, self.option)
        return value


@cache
def _option_class() -> type:
    import click

    class SettingOption(click.Option):
        """An option whose --help also shows what a default of None means, and the range."""

        def __init__(self, *args: Any, setting: Setting, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.setting = setting

        def get_help_extra(self, ctx: click.Context) -> Any:
            extra = super().get_help_extra(ctx)
            shown = self.setting.shown_default()
            if "default" not in extra and shown:
                extra["default"] = shown
            if self.setting.accepts is not None:
                extra["range"] = self.setting.accepts.describe()
            return extra

    return SettingOption


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_TOML_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "path": (str,),
    "size": (int, str),
}


def _path_type() -> Any:
    import click

    return click.Path(path_type=Path)


_CLICK_TYPES: dict[str, Callable[[], Any]] = {
    "int": lambda: int,
    "float": lambda: float,
    "str": lambda: str,
    "path": _path_type,
    "size": lambda: str,
}

_SUBMIT = ("submit",)
_RECONCILE = ("reconcile",)
_POLL_MIN_IN = ("submit", "retry", "reconcile")
_AT_LEAST_1 = Range(1)
_NOT_NEGATIVE = Range(0)

SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting(
            "provider",
            "str",
            "openai",
            "Batch provider the jobs go to: openai, anthropic, any registered adapter.",
            _SUBMIT,
            metavar="NAME",
        ),
        Setting(
            "model",
            "str",
            None,
            "Model for rows that name none (ready lines name their own).",
            _SUBMIT,
        ),
        Setting(
            "endpoint",
            "str",
            None,
            "Batch endpoint.",
            _SUBMIT,
            metavar="responses|chat|embeddings",
            default_text="responses, or the url of ready lines",
        ),
        Setting(
            "system",
            "str",
            None,
            "System prompt, or @FILE to read it from.",
            _SUBMIT,
            metavar="TEXT|@FILE",
        ),
        Setting(
            "max_output_tokens",
            "int",
            None,
            "Output token limit of every request (rows may set their own).",
            _SUBMIT,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "temperature",
            "float",
            None,
            "Sampling temperature (rows may set their own).",
            _SUBMIT,
            accepts=Range(0, 2),
        ),
        Setting(
            "json",
            "bool",
            False,
            "JSON mode (json_object output).",
            _SUBMIT,
            field="json_mode",
        ),
        Setting(
            "json_schema",
            "path",
            None,
            "Structured output: a JSON Schema file, or one holding {name, schema, strict}.",
            _SUBMIT,
        ),
        Setting(
            "max_requests",
            "int",
            MAX_REQUESTS_PER_BATCH,
            "Requests per job at most.",
            _SUBMIT,
            accepts=Range(1, MAX_REQUESTS_PER_BATCH),
        ),
        Setting(
            "max_bytes",
            "size",
            MAX_BYTES_PER_BATCH,
            "Bytes per job file at most (200000000, 150MB, 64MiB).",
            _SUBMIT,
            metavar="SIZE",
            accepts=Range(1, MAX_BYTES_PER_BATCH),
        ),
        Setting(
            "max_tokens_per_job",
            "int",
            None,
            "Estimated input tokens per job at most (keep each batch under the enqueued-token "
            "limit).",
            _SUBMIT,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "max_context",
            "int",
            None,
            "Refuse requests whose estimated input plus output tokens exceed this.",
            _SUBMIT,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "count_tokens",
            "bool",
            True,
            "Estimate input tokens (tiktoken), for the token limits and the cost.",
            _SUBMIT,
            flag="--count-tokens/--no-count-tokens",
        ),
        Setting(
            "workdir",
            "path",
            None,
            "Where runs/ goes.",
            _SUBMIT,
            default_text="beside a SQLite ledger, else the current directory",
        ),
        Setting(
            "prices",
            "path",
            None,
            "Price table overriding or adding to the packaged one.",
            _SUBMIT,
            env="LEDGER_PRICES",
        ),
        Setting(
            "interval",
            "float",
            5.0,
            "Seconds between passes when nothing is due sooner (--loop, --until-done).",
            _RECONCILE,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "poll_min",
            "float",
            10.0,
            "Seconds from a batch's creation (or state change) to its first poll.",
            _POLL_MIN_IN,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "poll_max",
            "float",
            120.0,
            "Longest wait between polls, in seconds (each unchanged answer multiplies the wait "
            "by 1.5).",
            _RECONCILE,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "concurrency",
            "int",
            16,
            "Jobs this process steps at once.",
            _RECONCILE,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "max_enqueued_tokens",
            "int",
            None,
            "Hold jobs back so estimated prompt tokens in flight per model stay under this.",
            _RECONCILE,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "not_found_grace",
            "float",
            600.0,
            "Seconds a new batch may answer 404 before its job is failed.",
            _RECONCILE,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "lease_seconds",
            "float",
            900.0,
            "Seconds a claim on a job lasts; longer than the slowest provider call.",
            _RECONCILE,
            accepts=Range(0, above=True),
        ),
    )
}


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


def parse_size(text: str) -> int:
    """`--max-bytes` as bytes (`150MB`, `64MiB`); InputError when it is no size."""
    from ledger.build.shards import parse_size as parse

    return parse(text)


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
            value += f" {setting.accepts.describe()}"
        shown = setting.shown_default()
        cells = [
            f"`{setting.name}`",
            f"`{option}`",
            ", ".join(setting.commands),
            value,
            f"`{shown}`" if shown else "none",
            setting.help,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_KIND_WORDS = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "true/false",
    "path": "file path",
    "size": 'bytes or `"150MB"`',
}
