"""What a setting is: its value, default, range and option (declared.py lists every one)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from ledger.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


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
    #: The option may be given several times (`--model A --model B`); in ledger.toml the key
    #: takes one value or a list of them.
    multiple: bool = False

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
        return (*_TOML_TYPES[self.kind], list) if self.multiple else _TOML_TYPES[self.kind]

    def problem(self, value: Any) -> str | None:
        """What is wrong with a value of the right type, or None."""
        if self.multiple and isinstance(value, list | tuple):
            for item in value:
                if not isinstance(item, _TOML_TYPES[self.kind]):
                    return f"{item!r} is not a {self.kind}"
            return next(filter(None, (self.problem(item) for item in value)), None)
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
        if self.default is None:
            return ""
        if self.kind == "bool":
            return "true" if self.default else "false"
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
        if self.multiple:
            extra["multiple"] = True
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
            # click words a flag's default itself (`count-tokens`), or leaves it out when off.
            if "default" not in extra and shown and self.setting.kind != "bool":
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


_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g|kib|mib|gib)?\s*")
_UNITS = {
    None: 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_size(text: str) -> int:
    """Bytes from `200000000`, `150MB`, `1.5GB` or `64MiB` (decimal units unless `iB`)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise InputError(f"--max-bytes: {text!r} is not a size (try 100MB)")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower() if unit else None])
