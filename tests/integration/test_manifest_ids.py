"""The run's manifest.json gains each job's batch_id, output_file_id and error_file_id as they
become known, rewritten atomically, so a pipeline sees them without querying the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ledger import Ledger
from ledger.core.models import Job
from ledger.core.states import State


def manifest_ids(tmp_path: Path, run: str) -> dict[int, tuple[Any, Any, Any]]:
    manifest = json.loads((tmp_path / "runs" / run / "manifest.json").read_text())
    return {
        job["job_id"]: (job["batch_id"], job["output_file_id"], job["error_file_id"])
        for job in manifest["jobs"]
    }


def ledger_ids(ledger: Ledger) -> dict[int, tuple[Any, Any, Any]]:
    with ledger.engine.connect() as connection:
        rows = connection.execute(
            select(Job.id, Job.batch_id, Job.output_file_id, Job.error_file_id)
        ).all()
    return {row.id: (row.batch_id, row.output_file_id, row.error_file_id) for row in rows}


def test_manifest_gains_batch_and_file_ids_as_they_become_known(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Built: no ids. Sent: each job's batch_id, no files yet. Finished (some requests failing):
    output and error file ids, equal to the ledger's; no temporary file is left behind."""
    rows = "".join(json.dumps({"id": f"q{i}", "prompt": f"say {i}"}) + "\n" for i in range(8))
    (tmp_path / "qs.jsonl").write_text(rows)
    emulator.configure(scenario="request_failures", failure_rate=0.5)
    ledger = Ledger.open(
        tmp_path / "ledger.db", base_url=emulator.base_url, poll_min=0, poll_max=0.05
    )
    ledger.submit(tmp_path / "qs.jsonl", run="m", model="gpt-4o-mini", max_requests=4, send=False)
    assert manifest_ids(tmp_path, "m") == {1: (None, None, None), 2: (None, None, None)}

    ledger.reconcile(run="m", states=(State.BUILT, State.UPLOADED), jitter=0.0)
    sent = manifest_ids(tmp_path, "m")
    assert all(batch_id and batch_id.startswith("batch_") for batch_id, _, _ in sent.values())
    assert all(output is None and error is None for _, output, error in sent.values())

    ledger.reconcile(run="m", until_done=True, timeout=60, interval=0.01, jitter=0.0)
    final = manifest_ids(tmp_path, "m")
    assert final == ledger_ids(ledger)
    assert all(output or error for _, output, error in final.values())
    assert any(output for _, output, _ in final.values())
    assert any(error for _, _, error in final.values())
    assert sorted(p.name for p in (tmp_path / "runs" / "m").iterdir() if p.is_file()) == [
        ".manifest.json.lock",
        "manifest.json",
    ]
    ledger.close()
