"""Faults on each compatible host's routes (Azure, Groq, Together, xAI): 500s, 429s, dropped
replies and cut-off downloads on the emulator's prefix for the host, driven by the `openai` SDK
under the host's profile. Every job still ends normalized with exactly one remote batch and one
uploaded file, and the host's key is written nowhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from support.drivers import reconcile_until_done
from support.factories import add_built_job
from support.hosts import HOST_CASES, HostCase, files_holding

from ledger.core.models import Job, Request

FAULTS = [
    {"kind": "drop_response", "route": "upload_file", "times": 1},
    {"kind": "drop_response", "route": "create_batch", "times": 1},
    {"kind": "drop_response", "route": "retrieve_batch", "times": 1},
    {"kind": "truncate_download", "route": "file_content", "times": 1},
    {"kind": "http_500", "every": 4},
    {"kind": "http_429", "every": 5, "seconds": 0.01},
]


@pytest.fixture(params=HOST_CASES, ids=[case.provider for case in HOST_CASES])
def host(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> HostCase:
    case: HostCase = request.param
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(case.key_env, case.key())
    return case


def test_each_host_survives_500s_429s_dropped_replies_and_cut_downloads(
    engine: Engine, emulator: Any, tmp_path: Path, host: HostCase
) -> None:
    """Two jobs through a storm of faults on the host's routes: one upload and one batch per
    job (a lost create is adopted, not repeated), every request succeeded, no key stored."""
    emulator.configure(faults=FAULTS)
    job_ids = [
        add_built_job(
            engine,
            tmp_path,
            "r",
            [f"s{s}-{i}" for i in range(3)],
            provider=host.provider,
            shard_index=s,
        )
        for s in (1, 2)
    ]
    reconcile_until_done(engine, host.base_url(emulator))
    stats = emulator.stats()
    assert stats["faults"]["drop_response"] == 3 and stats["faults"]["truncate_download"] == 1
    assert stats["faults"]["http_500"] > 0 and stats["faults"]["http_429"] > 0
    assert stats["batches"]["created"] == 2 and stats["batches"]["by_host"] == {host.provider: 2}
    assert sorted(stats["batches"]["by_input_filename"].values()) == [1, 1]
    assert sorted(stats["files"]["by_name"].values()) == [1, 1]  # one upload per job
    with engine.connect() as connection:
        states = connection.execute(select(Job.state).where(Job.id.in_(job_ids))).scalars()
        assert list(states) == ["normalized", "normalized"]
        statuses = connection.execute(select(Request.status)).scalars()
        assert list(statuses) == ["succeeded"] * 6
        for table in ("jobs", "job_events", "requests"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            assert host.key() not in repr(rows), table
    assert files_holding(tmp_path, host.key()) == []
