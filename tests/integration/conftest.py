"""Fixtures the integration tests share: the emulator on either of its clocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The emulator on the poll clock: a batch (or job) moves one stage per GET of it."""
    with Emulator(EmulatorConfig(polls_per_stage=1)).start() as running:
        yield running


@pytest.fixture
def timed_emu() -> Iterator[Emulator]:
    """The emulator on the time clock, so a batch nobody polls still ends (orphans do)."""
    with Emulator(EmulatorConfig(stage_seconds=0.05)).start() as running:
        yield running
