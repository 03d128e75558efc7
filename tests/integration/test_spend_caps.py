"""Budget caps at the create step, against the emulator with the real SDK: a batch is created only
while spent + in flight + its own estimate stay under every cap; a held job says which cap and
by how much; raising the cap (in the ledger or in ledger.toml) releases it on the next pass; the
reservation settles to the actual cost; a provider out of quota is paused, not retried."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.factories import add_built_job

from adapters import get_provider
from adapters.anthropic.batch import AnthropicBatchProvider
from cli import cli
from ledger.config import load_config
from ledger.core.db import read_db_now
from ledger.core.models import Job, ProviderPause
from ledger.core.states import State
from ledger.errors import QuotaExhausted
from ledger.reconcile.engine import ReconcileOptions, Reconciler
from ledger.spend import BudgetSource, resume_provider, set_cap
from ledger.spend.show import all_caps

#: Prices that make each test job (20 estimated input tokens, as many output) cost $0.20.
PRICED = """
[models."gpt-4o-mini"]
input = 5000.0
output = 5000.0
"""


def write_config(path: Path, budget: str) -> Path:
    path.write_text(PRICED + "\n[budget]\n" + budget, encoding="utf-8")
    return path


def bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def add_jobs(engine: Engine, workdir: Path, count: int, run: str = "r") -> list[int]:
    return [
        add_built_job(engine, workdir, run, [f"{run}{n}-a", f"{run}{n}-b"], shard_index=n)
        for n in range(1, count + 1)
    ]


def sender(engine: Engine, emulator: Any, source: BudgetSource, **options: Any) -> Reconciler:
    """A reconciler that only uploads and creates (batches stay in flight, so nothing settles)."""
    settings = {"poll_min": 0.0, "poll_max": 0.05, "jitter": 0.0, "base_url": emulator.base_url}
    settings.update(states=(State.BUILT, State.UPLOADED), budget=source, **options)
    return Reconciler(engine, ReconcileOptions(**settings))


def jobs(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(Job.__table__).order_by(Job.id)))


def created(emulator: Any) -> int:
    return emulator.stats()["batches"]["created"]


def test_a_daily_cap_holds_jobs_and_says_by_how_much(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """With $1.10 a day and $0.20 a job, five batches are created; the others wait, each saying
    which cap holds it and by how much, and `ledger status` shows it."""
    config = write_config(tmp_path / "ledger.toml", "daily_usd = 1.10\n")
    add_jobs(engine, tmp_path, 8)
    reconciler = sender(engine, emulator, BudgetSource(load_config(config)))
    reconciler.run_pass()
    reconciler.run_pass()
    assert created(emulator) == 5
    rows = jobs(engine)
    held = [row for row in rows if row.batch_id is None]
    assert len(held) == 3
    for row in held:
        assert row.state == "uploaded"
        assert row.waiting_for == (
            "held by the daily budget of $1.10: $0.00 spent + $1.00 in flight + $0.2 this job "
            "would pass it by $0.1"
        )
    sent = [row for row in rows if row.batch_id is not None]
    assert {round(row.est_cost_usd, 6) for row in sent} == {0.2}
    assert {row.account for row in sent} == {f"openai@{emulator.base_url.split('/')[2]}"}
    [cap] = all_caps(engine, BudgetSource(load_config(config)).current())
    assert (cap.scope, round(cap.reserved, 6), cap.spent) == ("daily", 1.0, 0.0)
    db = str(engine.url.render_as_string(hide_password=False))
    shown = CliRunner().invoke(cli, ["--db", db, "status", "r"], catch_exceptions=False)
    assert f"waiting: job {held[0].id} held by the daily budget of $1.10" in shown.output


def test_raising_the_cap_in_the_ledger_or_the_file_releases_held_jobs(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """`ledger budget set daily` (recorded in the ledger, over the file) and an edit of
    ledger.toml each release held jobs on the reconciler's next pass."""
    config = write_config(tmp_path / "ledger.toml", "daily_usd = 0.5\n")
    add_jobs(engine, tmp_path, 8)
    reconciler = sender(engine, emulator, BudgetSource(load_config(config)))
    reconciler.run_pass()
    assert created(emulator) == 2
    db = str(engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(cli, ["--db", db, "budget", "set", "daily", "0.9"])
    assert result.exit_code == 0, result.output
    reconciler.run_pass()
    assert created(emulator) == 4
    with engine.begin() as connection:  # back to the file's cap
        set_cap(connection, "daily", None, read_db_now(connection))
    write_config(config, "daily_usd = 1.3\n")
    bump_mtime(config)
    reconciler.run_pass()
    assert created(emulator) == 6
    assert sum(1 for row in jobs(engine) if row.waiting_for) == 2


def test_max_cost_caps_one_run_and_the_reservation_settles(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """A run's --max-cost holds its own jobs only; once its batches are normalized the estimate
    is replaced by the actual cost, which frees the rest of the run."""
    config = write_config(tmp_path / "ledger.toml", "")
    add_jobs(engine, tmp_path, 3, run="capped")
    add_jobs(engine, tmp_path, 2, run="free")
    with engine.begin() as connection:
        set_cap(connection, "run:capped", 0.3, read_db_now(connection))
    source = BudgetSource(load_config(config))
    sender(engine, emulator, source).run_pass()
    assert created(emulator) == 3  # one of "capped", both of "free"
    # The emulator answers each request with a few tokens: the actual cost is well under $0.20.
    everything = Reconciler(
        engine,
        ReconcileOptions(
            poll_min=0, poll_max=0.05, jitter=0, base_url=emulator.base_url, budget=source
        ),
    )
    for _ in range(200):
        everything.run_pass()
        if created(emulator) == 5 and not everything.pending_jobs():
            break
    assert created(emulator) == 5
    rows = jobs(engine)
    assert all(row.state == "normalized" for row in rows)
    [cap] = [c for c in all_caps(engine, source.current()) if c.scope == "run:capped"]
    assert cap.reserved == 0.0
    assert cap.spent == sum(row.cost_usd for row in rows[:3]) < 0.3


def test_insufficient_quota_pauses_the_provider_instead_of_retrying(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """A create refused with insufficient_quota pauses openai (with a time), leaves the job
    waiting with that reason, and is not retried while paused; `ledger budget resume` ends it."""
    config = write_config(tmp_path / "ledger.toml", "pause_minutes = 30\n")
    emulator.configure(faults=[{"kind": "insufficient_quota", "route": "create_batch", "times": 1}])
    add_jobs(engine, tmp_path, 2)
    reconciler = sender(engine, emulator, BudgetSource(load_config(config)), concurrency=1)
    report = reconciler.run_pass()
    assert report.paused is None  # the reconciler goes on; only the provider is paused
    for _ in range(3):
        reconciler.run_pass()
    assert emulator.stats()["requests"]["create_batch"] == 1
    assert created(emulator) == 0
    with engine.connect() as connection:
        pause = connection.execute(select(ProviderPause)).one()
        now = read_db_now(connection)
    assert pause.provider == "openai" and "insufficient quota" in pause.reason
    assert 29 * 60 < pause.until - now <= 30 * 60
    for row in jobs(engine):
        assert row.waiting_for.startswith("provider openai paused")
        assert row.submit_token is None  # a definite refusal reserves nothing
    db = str(engine.url.render_as_string(hide_password=False))
    shown = CliRunner().invoke(cli, ["--db", db, "budget", "show"], catch_exceptions=False)
    assert "provider openai paused until" in shown.output
    assert resume_provider(engine, "openai")
    for _ in range(100):  # the refused job is due again poll_max (0.05 s) after its refusal
        reconciler.run_pass()
        if created(emulator) == 2:
            break
        time.sleep(0.01)
    assert created(emulator) == 2


def test_each_provider_words_running_out_of_money_as_quota_exhausted(tmp_path: Path) -> None:
    """OpenAI's 429 insufficient_quota and Anthropic's 402 billing_error (the emulator's
    `insufficient_quota` fault on each) reach the reconciler as QuotaExhausted, not as a
    retryable 429 or a refused key."""
    from ledger.emulator import Emulator, EmulatorConfig

    shard = tmp_path / "runs" / "r" / "batch_inputs" / "shard-0001.jsonl"
    shard.parent.mkdir(parents=True)
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    shard.write_text(json.dumps(line) + "\n")
    faults = [
        {"kind": "insufficient_quota", "route": route}
        for route in ("create_batch", "create_message_batch")
    ]
    with Emulator(EmulatorConfig(faults=faults)).start() as emu:
        anthropic = AnthropicBatchProvider(base_url=emu.url, api_key="sk-ant-x", timeout=10.0)
        remote = anthropic.upload_input(shard, filename="ledger-job1.jsonl")
        with pytest.raises(QuotaExhausted, match=r"billing: .*credit balance is too low"):
            anthropic.create_batch(
                input_file_id=remote.id, endpoint="/v1/chat/completions", metadata={}
            )
        openai = get_provider("openai", emu.base_url, api_key="sk-x")
        uploaded = openai.upload_input(shard, filename="ledger-job1.jsonl")
        with pytest.raises(QuotaExhausted, match=r"insufficient quota: .*exceeded your current"):
            openai.create_batch(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", metadata={}
            )


def test_a_batch_refused_for_the_token_queue_releases_its_reservation(
    engine: Engine, emulator: Any, api_key: str, tmp_path: Path
) -> None:
    """A batch that fails with token_limit_exceeded goes back to wait and holds nothing against
    the caps until it is created again."""
    config = write_config(tmp_path / "ledger.toml", "daily_usd = 0.3\n")
    emulator.configure(scenario="token_limit_exceeded", token_limit_failures=1)
    [job_id] = add_jobs(engine, tmp_path, 1)
    source = BudgetSource(load_config(config))
    reconciler = Reconciler(
        engine,
        ReconcileOptions(
            poll_min=0, poll_max=60, jitter=0, base_url=emulator.base_url, budget=source
        ),
    )
    reserved = []
    row = jobs(engine)[0]
    for _ in range(20):
        reconciler.run_pass()
        [cap] = all_caps(engine, source.current())
        reserved.append(round(cap.reserved, 6))
        row = jobs(engine)[0]
        if row.state == "uploaded" and row.attempt == 1:
            break  # failed for the queue, sent back to wait (for poll_max)
    assert (row.id, row.batch_id, row.submit_token) == (job_id, None, None)
    assert reserved[0] == 0.2 and reserved[-1] == 0.0
    assert created(emulator) == 1
