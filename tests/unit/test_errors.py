"""The exception tree: every error ledger defines descends from LedgerError, carries an exit code
and a docstring, is exported from `ledger`, and sits where ledger/errors.py draws it."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import adapters
import adapters.base
import ledger
import ledger.errors
from ledger.errors import (
    ConfigError,
    FatalError,
    InputError,
    LedgerError,
    MissingAPIKey,
    ProviderError,
    StorageError,
)

ROOT = Path(__file__).resolve().parents[2]


def defined_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of ledger/ or adapters/, found by walking the
    files (some folders are namespace packages). The emulator, which imports nothing from
    ledger, keeps its own errors."""
    found: dict[str, type[BaseException]] = {}
    for path in sorted([*(ROOT / "ledger").rglob("*.py"), *(ROOT / "adapters").rglob("*.py")]):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[:2] == ("ledger", "emulator"):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{attribute}"] = value
    return found


EXCEPTIONS = defined_exceptions()


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    """The meta-tests below see errors from core, build, reconcile, results and adapters."""
    names = {cls.__name__ for cls in EXCEPTIONS.values()}
    assert {"StaleWrite", "RowProblem", "PauseLoop", "UnreadableLine", "RequestSetError"} <= names
    assert {"LedgerError", "ProviderError", "MissingAPIKey"} <= names


@pytest.mark.parametrize("where", sorted(EXCEPTIONS))
def test_every_exception_defined_is_in_the_tree(where: str) -> None:
    """Each exception class under ledger/ and adapters/ is a LedgerError."""
    assert issubclass(EXCEPTIONS[where], LedgerError), f"{where} is not in the LedgerError tree"


@pytest.mark.parametrize("where", sorted(EXCEPTIONS))
def test_every_error_has_its_own_docstring_and_an_exit_code(where: str) -> None:
    """A docstring of its own, and exit code 1 (provider or runtime) or 2 (input or config)."""
    cls = EXCEPTIONS[where]
    assert cls.__dict__.get("__doc__"), f"{where} has no docstring"
    assert getattr(cls, "exit_code", None) in (1, 2), f"{where} has no exit code"


@pytest.mark.parametrize("where", sorted(EXCEPTIONS))
def test_ledger_exports_every_error(where: str) -> None:
    """`from ledger import X` works for every error, and gives the very class raised."""
    cls = EXCEPTIONS[where]
    assert cls.__name__ in ledger.__all__
    assert getattr(ledger, cls.__name__) is cls


def drawn_tree() -> dict[str, tuple[str | None, int]]:
    """ledger/errors.py's drawing: each class name -> (its parent in the drawing, exit code)."""
    assert ledger.errors.__doc__ is not None
    drawn: dict[str, tuple[str | None, int]] = {}
    parents: list[tuple[int, str]] = []  # (column, name) of the open ancestors
    for line in ledger.errors.__doc__.splitlines():
        match = re.match(r"^(\s*(?:[│├└─ ]*))([A-Z]\w+)\s+([012])\b", line)
        if not match:
            continue
        column, name, code = len(match.group(1)), match.group(2), int(match.group(3))
        while parents and parents[-1][0] >= column:
            parents.pop()
        drawn[name] = (parents[-1][1] if parents else None, code)
        parents.append((column, name))
    return drawn


def test_the_drawing_in_ledger_errors_is_the_tree() -> None:
    """Every error is drawn under its real base class, with its real exit code, and nothing
    drawn is missing."""
    drawn = drawn_tree()
    actual = {cls.__name__: cls for cls in EXCEPTIONS.values()}
    assert set(drawn) == set(actual)
    for name, (parent, code) in drawn.items():
        cls = actual[name]
        assert issubclass(cls, LedgerError)
        bases = [base.__name__ for base in cls.__bases__ if issubclass(base, LedgerError)]
        assert bases == ([parent] if parent else []), f"{name} is drawn under {parent}"
        assert cls.exit_code == code, f"{name} is drawn with exit code {code}"


def test_input_and_configuration_errors_exit_2_and_failures_exit_1() -> None:
    """The branches set the codes: the user's input 2, the database and providers 1."""
    assert LedgerError.exit_code == 1
    assert InputError.exit_code == 2 and ConfigError.exit_code == 2
    assert issubclass(ConfigError, InputError)
    assert StorageError.exit_code == 1 and ProviderError.exit_code == 1
    assert MissingAPIKey.exit_code == 1


def test_a_missing_key_is_a_fatal_provider_error() -> None:
    """The reconciler pauses on a missing key exactly as on refused credentials."""
    assert issubclass(MissingAPIKey, FatalError)
    assert issubclass(MissingAPIKey, ProviderError)


def test_errors_stay_catchable_as_the_builtins_they_were() -> None:
    """Code that caught ValueError or RuntimeError still catches the same errors."""
    assert issubclass(ledger.StaleWrite, RuntimeError)
    for name in ("IllegalTransition", "QueryRefused", "UnreadableLine", "RequestSetError"):
        assert issubclass(getattr(ledger, name), ValueError), name


def test_adapters_base_reexports_the_provider_errors() -> None:
    """`from adapters.base import TransientError` keeps working and names the same class."""
    for name in (
        "ProviderError",
        "TransientError",
        "OutcomeUnknown",
        "FatalError",
        "NotFound",
        "Rejected",
        "MissingAPIKey",
    ):
        assert getattr(adapters.base, name) is getattr(ledger.errors, name)


def test_ledger_errors_imports_nothing() -> None:
    """ledger/errors.py can be imported from any layer: it imports nothing of its own."""
    tree = ast.parse((ROOT / "ledger" / "errors.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(node) for node in imports] == ["from __future__ import annotations"]


def test_unknown_names_are_still_an_attribute_error() -> None:
    """The lazy exports do not turn a typo into something else."""
    with pytest.raises(AttributeError, match="no attribute 'LedgerEror'"):
        _ = ledger.LedgerEror  # type: ignore[attr-defined]
