"""No module of the package grows past what one reader holds in mind: 400 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def package_modules() -> list[Path]:
    """Every module under ledger/ (the emulator included) and adapters/, and cli.py."""
    found = [ROOT / "cli.py"]
    for package in ("ledger", "adapters"):
        found += sorted((ROOT / package).rglob("*.py"))
    return found


def line_count(path: Path) -> int:
    """The lines of a module, as `wc -l` counts them for a file ending in a newline."""
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_walk_finds_the_modules_it_is_meant_to_check() -> None:
    """The walk covers cli.py, the ledger package, the emulator and the adapters."""
    found = {path.relative_to(ROOT).as_posix() for path in package_modules()}
    for expected in (
        "cli.py",
        "ledger/api.py",
        "ledger/build/run.py",
        "ledger/emulator/server.py",
        "adapters/openai/batch.py",
    ):
        assert expected in found


def test_no_module_is_longer_than_400_lines() -> None:
    """Every module is at most 400 lines long, except the known exceptions being split."""
    too_long = {
        path.relative_to(ROOT).as_posix(): lines
        for path in package_modules()
        if (lines := line_count(path)) > MAX_LINES
    }
    assert too_long == {}, f"split these modules along their seams: {too_long}"
