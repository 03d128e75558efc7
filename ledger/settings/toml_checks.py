"""How a `ledger.toml` value of the wrong type or an unknown key is refused: one line naming the
file and the key (and, for a key that looks like a secret, where keys go instead)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from ledger.errors import ConfigError

#: Keys that look like a secret: refused with a pointer to `api_key_env`.
_SECRET_KEYS = frozenset({"api_key", "key", "token", "secret", "password", "auth_token"})


def check_type(path: Path, key: str, value: Any, types: tuple[type, ...]) -> None:
    # bool is an int to Python, but TOML's true is not a number.
    is_bool_for_number = isinstance(value, bool) and bool not in types
    if is_bool_for_number or not isinstance(value, types):
        wanted = " or ".join(_TYPE_WORDS[t] for t in types)
        raise ConfigError(f"{path}: {key}: expected {wanted}, got {value!r}")


_TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a table",
}


def unknown_key(
    path: Path, key: str, where: str, known: Mapping[str, Any] | tuple[str, ...]
) -> NoReturn:
    name = f"{where}.{key}" if where else key
    if key in _SECRET_KEYS:
        raise ConfigError(
            f"{path}: {name}: keys never live in the config file; name the environment "
            "variable that holds it with api_key_env"
        )
    raise ConfigError(f"{path}: unknown key {name!r} (known: {', '.join(known)})")
