"""`ledger submit`: the printed plan, --limit, token counting off, prices, and idempotent
resubmission (same input and options: nothing changes; different: refused)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from support.buildkit import prompts, query, shard_files, shard_lines, submit, write_jsonl

from ledger.build.run import BuildOptions, build_run
from ledger.core.db import open_ledger
from ledger.core.models import Job, JobEvent, Request, Run

MODEL = ("--model", "gpt-4o-mini")


def counts() -> dict[str, int]:
    return {
        table: query(f"select count(*) as n from {table}")[0]["n"]
        for table in ("runs", "jobs", "job_events", "requests")
    }


def test_dry_run_prints_the_plan(tmp_path: Path) -> None:
    """Jobs, requests, bytes, tokens and cost, one row per job, and that nothing was sent."""
    write_jsonl("eval.jsonl", [{"id": f"q{i}", "prompt": "hello world"} for i in range(3)])
    result = submit("eval.jsonl", *MODEL, "--max-requests", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    size = sum(p.stat().st_size for p in shard_files("eval"))
    lines = result.stdout.splitlines()
    assert lines[0] == f"run eval: 2 jobs, 3 requests, {size} B, 27 est. input tokens"
    assert lines[1] == f"  openai /v1/responses, model gpt-4o-mini; files in {tmp_path}/runs/eval"
    assert lines[2].split() == ["job", "shard", "model", "requests", "bytes", "est_tokens", "file"]
    assert lines[4].split()[:4] == ["1", "1", "gpt-4o-mini", "2"]
    assert lines[4].split()[5:] == ["18", "shard-0001.jsonl"]
    assert lines[5].split()[5:] == ["9", "shard-0002.jsonl"]
    # 27 tokens at $0.075 per 1M; no max_output_tokens, so input only.
    assert lines[6] == (
        "estimated cost: $0.000002: input only (27 tokens); output not estimated "
        "(no max_output_tokens on every request)"
    )
    assert lines[7] == (
        "dry run: 2 job(s) built and recorded, held; nothing sent (`ledger send eval` sends them)."
    )
    assert result.stderr == ""
    assert query("select state from jobs") == [{"state": "built"}, {"state": "built"}]


def test_without_dry_run_submit_uploads_and_creates_each_batch_once(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Submit sends every job (one upload, one batch each); submitting again sends nothing."""
    write_jsonl("in.jsonl", prompts(5))
    args = ("in.jsonl", *MODEL, "--max-requests", "2", "--base-url", emulator.base_url)
    result = submit(*args, "--max-output-tokens", "100", send=True)
    assert result.exit_code == 0, result.output
    assert "+ output at most" in result.stdout
    assert result.stdout.count("uploaded -> submitted") == 3
    assert result.stdout.splitlines()[-1].startswith("sent run in;")
    engine = open_ledger("ledger.db")
    with engine.connect() as connection:
        states = connection.execute(text("select state, batch_id from jobs")).all()
    assert [s for s, _ in states] == ["submitted"] * 3 and all(b for _, b in states)
    again = submit(*args, "--max-output-tokens", "100", send=True)
    assert again.exit_code == 0 and "nothing rebuilt" in again.stdout
    assert "-> submitted" not in again.stdout
    assert emulator.stats()["batches"]["created"] == 3
    assert emulator.stats()["files"]["created"] == 3


def test_without_a_key_submit_builds_then_pauses_with_one_line(tmp_path: Path) -> None:
    """No OPENAI_API_KEY: the run is built and recorded, the send stops with one clear line."""
    write_jsonl("in.jsonl", prompts(2))
    result = submit("in.jsonl", *MODEL, send=True)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: paused: $OPENAI_API_KEY is not set (the key of provider openai)"
    )
    assert (tmp_path / "runs" / "in" / "batch_inputs" / "shard-0001.jsonl").exists()


def test_limit_takes_the_first_n_requests(tmp_path: Path) -> None:
    """--limit 3 builds the first three requests; the run still records the whole file's sha256."""
    write_jsonl("in.jsonl", prompts(10))
    with open("in.jsonl", "a") as handle:
        handle.write("a bad line past the limit\n")
    assert submit("in.jsonl", *MODEL, "--limit", "3").exit_code == 0
    assert [line["custom_id"] for line in shard_lines("in")[0]] == ["q1", "q2", "q3"]
    [run] = query("select request_count, input_sha256, options from runs")
    assert run["request_count"] == 3
    assert run["input_sha256"] == hashlib.sha256(Path("in.jsonl").read_bytes()).hexdigest()


def test_limit_counts_valid_requests_when_skipping(tmp_path: Path) -> None:
    """With --skip-invalid, --limit N still takes N good requests."""
    Path("in.jsonl").write_text('{"id": "a", "prompt": "x"}\n[1]\n{"id": "b", "prompt": "y"}\n')
    result = submit("in.jsonl", *MODEL, "--limit", "2", "--skip-invalid")
    assert result.exit_code == 0
    assert [line["custom_id"] for line in shard_lines("in")[0]] == ["a", "b"]


def test_resubmitting_the_same_input_changes_nothing(tmp_path: Path) -> None:
    """Same input, same options, same name: the recorded plan is reported, nothing duplicated."""
    write_jsonl("in.jsonl", prompts(5))
    first = submit("in.jsonl", *MODEL, "--max-requests", "2")
    before = counts()
    files = {p: p.stat().st_mtime_ns for p in shard_files("in")}
    again = submit("in.jsonl", *MODEL, "--max-requests", "2")
    assert again.exit_code == 0
    assert again.stdout.splitlines()[:-2] == first.stdout.splitlines()[:-1]
    assert again.stdout.splitlines()[-2] == (
        "run in was already built from this input: nothing rebuilt."
    )
    assert counts() == before == {"runs": 1, "jobs": 3, "job_events": 3, "requests": 5}
    assert {p: p.stat().st_mtime_ns for p in shard_files("in")} == files


def test_a_different_input_under_the_same_name_is_refused(tmp_path: Path) -> None:
    """Another file (or the same file changed) under an existing run name: exit 2, untouched."""
    write_jsonl("in.jsonl", prompts(2))
    assert submit("in.jsonl", *MODEL).exit_code == 0
    write_jsonl("in.jsonl", prompts(3))
    result = submit("in.jsonl", *MODEL)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: run 'in' already exists with a different input (")
    assert result.stderr.endswith("): choose another --run name\n")
    assert counts()["requests"] == 2


def test_other_options_under_the_same_name_are_refused(tmp_path: Path) -> None:
    """Same input with other options: exit 2, naming what changed."""
    write_jsonl("in.jsonl", prompts(2))
    assert submit("in.jsonl", *MODEL).exit_code == 0
    result = submit("in.jsonl", *MODEL, "--temperature", "0.5")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: run 'in' already exists with other options (temperature: None then, 0.5 now): "
        "choose another --run name\n"
    )


def test_no_count_tokens_records_no_estimates(tmp_path: Path) -> None:
    """--no-count-tokens: requests carry no estimate and the plan says the cost is unknown."""
    write_jsonl("in.jsonl", prompts(2))
    result = submit("in.jsonl", *MODEL, "--no-count-tokens")
    assert result.exit_code == 0
    assert "tokens not counted" in result.stdout.splitlines()[0]
    assert "estimated cost: unknown (token counting was off)" in result.stdout
    assert query("select est_input_tokens from requests") == [
        {"est_input_tokens": None},
        {"est_input_tokens": None},
    ]
    refused = submit("in.jsonl", "--run", "x", *MODEL, "--no-count-tokens", "--max-context", "9")
    assert refused.stderr == "error: --max-context: needs token counting (drop --no-count-tokens)\n"


def test_a_price_file_changes_the_estimate(tmp_path: Path) -> None:
    """--prices replaces the model's price in the estimate."""
    write_jsonl("in.jsonl", [{"id": "a", "prompt": "hello world"}])
    Path("p.toml").write_text('[models."gpt-4o-mini"]\ninput = 1000000\noutput = 0\n')
    result = submit("in.jsonl", *MODEL, "--prices", "p.toml")
    assert "estimated cost: $9.00: input only (9 tokens)" in result.stdout


def test_an_unknown_model_warns_and_still_counts(tmp_path: Path) -> None:
    """A model tiktoken does not know: a warning on stderr, o200k_base counts, no price."""
    write_jsonl("in.jsonl", [{"id": "a", "prompt": "hello world"}])
    result = submit("in.jsonl", "--model", "acme-1")
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: unknown model 'acme-1': estimating tokens with o200k_base\n"
        "warning: model acme-1: not in the model table: its parameters are not checked and it "
        "has no price\n"
    )
    assert "9 est. input tokens" in result.stdout and "no price for acme-1" in result.stdout


def test_a_bad_run_name_is_refused(tmp_path: Path) -> None:
    """Run names become directories: `../x` is refused; a file stem is made safe."""
    write_jsonl("my data (v2).jsonl", prompts(1))
    assert submit("my data (v2).jsonl", *MODEL, "--run", "../x").exit_code == 2
    assert submit("my data (v2).jsonl", *MODEL).exit_code == 0
    assert query("select name from runs") == [{"name": "my-data-v2"}]


def test_build_run_records_the_run_and_jobs(engine: Engine, tmp_path: Path) -> None:
    """The library call the CLI makes: a plan whose jobs and requests are in the ledger."""
    write_jsonl("in.jsonl", prompts(5))
    options = BuildOptions(model="gpt-4o-mini", max_requests=2, workdir=tmp_path / "w")
    plan = build_run(engine, tmp_path / "in.jsonl", options)
    assert (plan.run_name, plan.request_count, len(plan.jobs), plan.existing) == ("in", 5, 3, False)
    assert plan.run_dir == tmp_path / "w" / "runs" / "in"
    assert plan.manifest_path.exists()
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Request)).scalar_one() == 5
        run = connection.execute(select(Run)).one()
        jobs = connection.execute(select(Job).order_by(Job.shard_index)).all()
        events = connection.execute(select(JobEvent)).all()
    assert (run.provider, run.endpoint, run.model, run.request_count) == (
        "openai",
        "/v1/responses",
        "gpt-4o-mini",
        5,
    )
    assert [job.id for job in jobs] == [job.job_id for job in plan.jobs]
    assert {event.to_state for event in events} == {"built"}
    again = build_run(engine, tmp_path / "in.jsonl", options)
    assert again.existing and again.jobs == plan.jobs


@pytest.mark.parametrize("flag", ["--json", "--temperature=1"])
def test_body_options_do_not_apply_to_embeddings(tmp_path: Path, flag: str) -> None:
    """Embeddings have no JSON mode or temperature: refused up front."""
    write_jsonl("in.jsonl", [{"id": "a", "input": "x"}])
    result = submit("in.jsonl", "--endpoint", "embeddings", *MODEL, flag)
    assert (
        result.exit_code == 2 and "the embeddings endpoint has no such parameter" in result.stderr
    )
