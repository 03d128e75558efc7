"""`ledger cancel` of a job whose create went through but whose reply was lost: the batch is
found by its tag, as the create step finds it, and cancelled at the provider (OpenAI and
Anthropic), instead of the job being marked "never submitted" over a live, billed batch."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.drivers import reconcile_until_done
from support.factories import add_built_job

from ledger.core.models import Job, Request
from ledger.emulator import Emulator
from ledger.reconcile.cancel import cancel_jobs
from ledger.reconcile.engine import ReconcileOptions, Reconciler

CASES = {
    "openai": ("gpt-4o-mini", "create_batch", "OPENAI_API_KEY"),
    "anthropic": ("claude-sonnet-4-5", "create_message_batch", "ANTHROPIC_API_KEY"),
}


def remote_statuses(emu: Emulator, provider: str) -> list[str]:
    """Every batch the emulator holds, by its own status word."""
    if provider == "openai":
        client = openai.OpenAI(base_url=emu.base_url, api_key="sk-test", max_retries=0)
        return [batch.status for batch in client.batches.list()]
    claude = anthropic.Anthropic(base_url=emu.url, api_key="sk-ant-test", max_retries=0)
    return [batch.processing_status for batch in claude.messages.batches.list()]


@pytest.mark.parametrize("provider", sorted(CASES))
def test_cancel_finds_the_batch_a_lost_create_reply_made_and_cancels_it(
    engine: Engine,
    emu: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
) -> None:
    """Create reaches the emulator, its reply is dropped; the job stays `uploaded` with its
    token. `cancel` looks the batch up by that tag, adopts it and cancels it there; the
    reconciler then ends every request `cancelled`."""
    model, create_route, key_variable = CASES[provider]
    monkeypatch.setenv(key_variable, "sk-test-cancel-0123456789")
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"], provider=provider, model=model)
    emu.configure(faults=[{"kind": "drop_response", "route": create_route, "times": 1}])
    url = emu.base_url if provider == "openai" else emu.url
    options = ReconcileOptions(poll_min=0.0, poll_max=0.05, jitter=0.0, base_url=url)
    reconciler = Reconciler(engine, options)
    for _ in range(4):
        reconciler.run_pass()
        if emu.stats()["faults"].get("drop_response"):
            break
    with engine.connect() as connection:
        job = connection.execute(select(Job.__table__).where(Job.id == job_id)).one()
    assert job.state == "uploaded" and job.submit_token and job.batch_id is None
    assert len(remote_statuses(emu, provider)) == 1  # the create did go through

    outcome = cancel_jobs(engine, [job_id], base_url=url)

    assert outcome[job_id].startswith("found batch ") and "cancel requested" in outcome[job_id]
    [status] = remote_statuses(emu, provider)
    # OpenAI: cancelling; Anthropic: canceling, or ended once the cancel took hold.
    assert status in ("cancelling", "canceling", "ended")
    with engine.connect() as connection:
        job = connection.execute(select(Job.__table__).where(Job.id == job_id)).one()
    assert job.batch_id is not None and job.state == "submitted"
    reconcile_until_done(engine, url)
    with engine.connect() as connection:
        requests = connection.execute(select(Request.status).where(Request.job_id == job_id))
        fates = list(requests.scalars())
    # What ran before the cancel took hold keeps its answer; the rest is cancelled.
    assert set(fates) <= {"cancelled", "succeeded"} and "cancelled" in fates


def test_cancel_after_a_create_that_never_arrived_cancels_locally(
    engine: Engine, emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create was answered 500 without being processed: the lookup finds no batch, so the
    job is cancelled without one, and the emulator holds none."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cancel-0123456789")
    job_id = add_built_job(engine, tmp_path, "r", ["a", "b"])
    emu.configure(faults=[{"kind": "http_500", "route": "create_batch"}])
    options = ReconcileOptions(poll_min=0.0, poll_max=0.05, jitter=0.0, base_url=emu.base_url)
    reconciler = Reconciler(engine, options)
    for _ in range(4):
        reconciler.run_pass()
        if emu.stats()["faults"].get("http_500"):
            break
    with engine.connect() as connection:
        job = connection.execute(select(Job.__table__).where(Job.id == job_id)).one()
    assert job.state == "uploaded" and job.submit_token
    assert cancel_jobs(engine, [job_id], base_url=emu.base_url) == {
        job_id: "cancelled (never submitted)"
    }
    assert remote_statuses(emu, "openai") == []
