"""The estimate made at submit is stored, so `ledger status`, `status --json` and the SQL views show
estimated against actual, per job, per run and per model; a model with no price is unknown
there (never $0.00), at submit, in status, in the views and in the results. Sent to the
emulator over HTTP by the official SDK."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.buildkit import prompts, write_jsonl

from cli import cli

FAST = ["--interval", "0.05", "--poll-min", "0.05", "--poll-max", "0.1"]
SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def ledger(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def documented_query(heading: str) -> str:
    """The example query of docs/schema.md whose comment starts with `heading`."""
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    match = re.search(rf"-- {re.escape(heading)}[^\n]*\n(.*?;)", text, re.S)
    assert match, heading
    return match.group(1)


def sql(query: str) -> list[dict[str, Any]]:
    result = ledger("sql", "--json", query)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def status(run: str | None = None) -> list[dict[str, Any]]:
    result = ledger("status", *([run] if run else []), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def submit(emulator: Any, name: str, model: str, count: int) -> dict[str, Any]:
    write_jsonl(f"{name}.jsonl", prompts(count))
    result = ledger(
        "submit", f"{name}.jsonl", "--model", model, "--max-output-tokens", "50",
        "--max-requests", "2", "--base-url", emulator.base_url, "--json-output",
        "--poll-min", "0.05",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def runs(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Run `priced` (gpt-4o-mini, 3 requests in 2 jobs) and `unpriced` (acme-1, a model the
    table has no price for), submitted and not yet reconciled."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-estimates")
    return {
        "priced": submit(emulator, "priced", "gpt-4o-mini", 3),
        "unpriced": submit(emulator, "unpriced", "acme-1", 1),
    }


def finish(emulator: Any) -> None:
    result = ledger("reconcile", "--until-done", "--base-url", emulator.base_url, *FAST)
    assert result.exit_code == 0, result.output


def test_the_estimate_made_at_submit_is_stored_per_job_and_run(runs: Any) -> None:
    """Right after submit, before any reconcile: each job of the priced run holds its estimate
    (input tokens plus max output tokens at batch prices), the run's is their sum and equals
    what submit printed; the unpriced run's estimate is unknown, in submit's JSON too."""
    assert runs["unpriced"]["estimated_cost_usd"] is None
    priced, unpriced = status()
    jobs = priced["jobs"]
    assert len(jobs) == 2 and all(job["est_cost_usd"] > 0 for job in jobs)
    assert [job["est_input_tokens"] for job in jobs] == [
        job["est_input_tokens"] for job in runs["priced"]["jobs"]
    ]
    assert priced["est_cost_usd"] == pytest.approx(sum(job["est_cost_usd"] for job in jobs))
    assert priced["est_cost_usd"] == pytest.approx(runs["priced"]["estimated_cost_usd"])
    assert unpriced["est_cost_usd"] is None
    assert [job["est_cost_usd"] for job in unpriced["jobs"]] == [None]


def test_once_done_status_sql_and_requests_show_estimated_against_actual(
    runs: Any, emulator: Any
) -> None:
    """Once both runs are done (one reconcile, checked three ways): `status` and `status
    --json`, the documented SQL queries, and the requests' rows."""
    estimate = status("priced")[0]["est_cost_usd"]
    finish(emulator)
    check_status(estimate)
    check_documented_queries()
    check_request_rows()


def check_status(estimate: float) -> None:
    """`status --json` has actual tokens and cost beside the estimate (unchanged by the create)
    per job and run; the text shows `cost $x (est. $y)` per run, the run's figures and a job
    table with both; the unpriced run's cost and estimate are `unknown`, never $0.0000."""
    priced, unpriced = status()
    assert priced["est_cost_usd"] == pytest.approx(estimate)
    assert priced["cost_usd"] > 0 and priced["input_tokens"] > 0 and priced["output_tokens"] > 0
    for job in priced["jobs"]:
        assert job["cost_usd"] > 0 and job["input_tokens"] > 0 and job["est_cost_usd"] > 0
    assert unpriced["cost_usd"] is None and unpriced["est_cost_usd"] is None
    assert unpriced["jobs"][0]["cost_usd"] is None and unpriced["jobs"][0]["input_tokens"] > 0

    lines = ledger("status").stdout.splitlines()
    assert f"cost ${priced['cost_usd']:.4f} (est. ${estimate:.4f})" in lines[0]
    assert lines[1].endswith("cost unknown (est. unknown)") and "$0.0000" not in lines[1]
    shown = ledger("status", "priced").stdout
    assert (
        f"  estimated against actual: input tokens {priced['est_input_tokens']:,} est., "
        f"{priced['input_tokens']:,} actual (output {priced['output_tokens']:,}); cost "
        f"${estimate:.4f} est., ${priced['cost_usd']:.4f} actual"
    ) in shown
    assert "est_cost_usd" in shown and f"${priced['jobs'][0]['est_cost_usd']:.4f}" in shown
    table = ledger("status", "unpriced").stdout.splitlines()[-1]
    assert table.count("unknown") == 2 and "$0.0000" not in table


def check_documented_queries() -> None:
    """docs/schema.md's queries, run as written by `ledger sql`: per run (run_progress) and per
    model (jobs), estimated and actual tokens and cost; unknown stays NULL, never 0."""
    priced, _ = status()
    per_run = sql(documented_query("Estimated against actual, per run"))
    assert [row["run_name"] for row in per_run] == ["priced", "unpriced"]
    row = per_run[0]
    assert row["est_cost_usd"] == pytest.approx(priced["est_cost_usd"])
    assert row["cost_usd"] == pytest.approx(priced["cost_usd"])
    assert row["cost_minus_estimate"] == pytest.approx(priced["cost_usd"] - priced["est_cost_usd"])
    assert (row["est_input_tokens"], row["input_tokens"]) == (
        priced["est_input_tokens"],
        priced["input_tokens"],
    )
    assert (per_run[1]["est_cost_usd"], per_run[1]["cost_usd"]) == (None, None)
    assert per_run[1]["cost_minus_estimate"] is None

    rows = sql(documented_query("Estimated against actual, per model"))
    per_model = {row["model"]: row for row in rows}
    assert set(per_model) == {"gpt-4o-mini", "acme-1"}
    assert per_model["gpt-4o-mini"]["jobs"] == 2
    assert per_model["gpt-4o-mini"]["est_cost_usd"] == pytest.approx(priced["est_cost_usd"])
    assert per_model["gpt-4o-mini"]["cost_usd"] == pytest.approx(priced["cost_usd"])
    assert (per_model["acme-1"]["est_cost_usd"], per_model["acme-1"]["cost_usd"]) == (None, None)
    assert per_model["acme-1"]["input_tokens"] > 0

    overview = sql("SELECT run_name, est_cost_usd, cost_usd FROM job_overview ORDER BY job_id")
    assert [r["cost_usd"] is None for r in overview] == [False, False, True]
    assert [r["est_cost_usd"] is None for r in overview] == [False, False, True]


def check_request_rows() -> None:
    """Each request keeps its estimated input tokens beside its actual usage; the unpriced
    model's request has no cost (NULL), never 0."""
    rows = sql(
        "SELECT r.name, q.est_input_tokens, q.input_tokens, q.cost_usd FROM requests q "
        "JOIN runs r ON r.id = q.run_id ORDER BY q.id"
    )
    assert [row["name"] for row in rows] == ["priced"] * 3 + ["unpriced"]
    assert all(row["est_input_tokens"] > 0 and row["input_tokens"] > 0 for row in rows)
    assert [row["cost_usd"] is None for row in rows] == [False, False, False, True]
