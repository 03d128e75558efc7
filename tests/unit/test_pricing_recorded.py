"""Actual costs as the ledger records and reports them: each request priced from its own usage
(Anthropic cache writes by TTL, cache reads), `ledger status` showing unknown rather than $0, and
`ledger prices` listing the table and what the ledger lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.anthropicfiles import message, succeeded
from support.batchfiles import CHAT, chat_body, downloaded_job, input_line, ok_line

from ledger.query.report import status_report
from ledger.results.normalize import normalize_job
from ledger.usage.capabilities import load_model_table
from ledger.usage.listing import price_listing


def test_anthropic_cache_writes_and_reads_are_priced_per_request(
    engine: Engine, tmp_path: Path
) -> None:
    """claude-haiku-4-5 in a batch: input $0.50, 5-min write $0.625, 1-h write $1, read $0.05."""
    first = message(input_tokens=1_000, output_tokens=2_000, cache_creation_input_tokens=100_000)
    first["usage"]["cache_creation"] = {
        "ephemeral_5m_input_tokens": 60_000,
        "ephemeral_1h_input_tokens": 40_000,
    }
    second = message(input_tokens=1_000, output_tokens=2_000, cache_read_input_tokens=100_000)
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", CHAT), input_line("b", CHAT)],
        output=[succeeded("a", first), succeeded("b", second)],
        errors=None,
        endpoint=CHAT,
        model="claude-haiku-4-5",
        provider="anthropic",
    )
    summary = normalize_job(engine, job.lease, job.job_id)
    # a: 1K x 0.50 + 60K x 0.625 + 40K x 1.00 + 2K x 2.50 = 0.0005 + 0.0375 + 0.04 + 0.005
    # b: 1K x 0.50 + 100K x 0.05 + 2K x 2.50 = 0.0005 + 0.005 + 0.005
    assert summary.cost_usd == pytest.approx(0.083 + 0.0105)


def test_openai_cached_tokens_are_priced_at_the_cached_rate(engine: Engine, tmp_path: Path) -> None:
    """gpt-4o-mini: 3,000 prompt tokens of which 2,000 cached, 800 output, with no override."""
    body = chat_body("y", prompt_tokens=3000, completion_tokens=800, cached_tokens=2000)
    job = downloaded_job(
        engine, tmp_path, [input_line("a", CHAT)], output=[ok_line("a", body)], endpoint=CHAT
    )
    summary = normalize_job(engine, job.lease, job.job_id)
    assert summary.cost_usd == pytest.approx((1000 * 0.075 + 2000 * 0.0375 + 800 * 0.30) / 1e6)


def test_a_run_with_an_unpriced_model_shows_cost_unknown(engine: Engine, tmp_path: Path) -> None:
    """status_report's cost is None once a normalized job has no cost, never $0."""
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a", CHAT)],
        output=[ok_line("a", chat_body("x"))],
        endpoint=CHAT,
        model="acme-1",
    )
    [run] = status_report(engine)
    assert run["cost_usd"] == 0.0  # nothing normalized yet: nothing spent so far
    normalize_job(engine, job.lease, job.job_id)
    [run] = status_report(engine)
    assert run["cost_usd"] is None


def test_price_listing_shows_rows_and_the_ledgers_unpriced_models(
    engine: Engine, tmp_path: Path
) -> None:
    """Every row with its source and date; models of the ledger's jobs without a price."""
    downloaded_job(engine, tmp_path, [input_line("a")], run="one", model="acme-1")
    downloaded_job(engine, tmp_path, [input_line("a")], run="two", model="gpt-4o-mini")
    listing = price_listing(engine)
    assert listing.unpriced == ["acme-1"]
    assert [row.model for row in listing.rows] == sorted(load_model_table().rows)
    assert all(row.sources and row.checked for row in listing.rows)


def test_price_listing_of_one_model_finds_its_snapshot_row() -> None:
    """`ledger prices gpt-4o-2024-08-06` shows gpt-4o's row; an unknown model is unpriced."""
    listing = price_listing(None, "gpt-4o-2024-08-06")
    [row] = listing.rows
    assert (row.model, row.input, row.cached_input, row.output) == ("gpt-4o", 1.25, 0.625, 5.0)
    assert row.as_dict()["checked"] == "2026-11-29" and listing.unpriced == []
    unknown = price_listing(None, "gpt-6-sol")
    assert (unknown.rows, unknown.unpriced) == ([], ["gpt-6-sol"])


def test_price_listing_shows_overrides(tmp_path: Path) -> None:
    """A row changed by a price file names that file."""
    override = tmp_path / "p.toml"
    override.write_text('[models."gpt-5"]\ninput = 1\noutput = 2\n')
    table = load_model_table(price_file=override)
    [row] = price_listing(None, "gpt-5", table=table).rows
    assert row.overridden_by == (str(override),) and (row.input, row.output) == (1.0, 2.0)
