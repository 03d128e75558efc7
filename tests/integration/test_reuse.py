"""`submit --reuse`: a request whose body already succeeded in this ledger is answered from there,
not sent; identical requests of one run are sent once. The emulator's count of request lines it
was sent proves what was (not) sent."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from cli import cli
from ledger import Ledger
from ledger.build import reuse_record
from ledger.core.models import Job, Request, Run
from ledger.errors import LedgerError

FAST = {"interval": 0.01, "jitter": 0.0}

#: Prices that make every estimate visible in the plan: $10 per million tokens either way.
PRICED = """
[models."gpt-4o-mini"]
input = 10.0
output = 10.0
"""


def lines_sent(emulator: Any) -> int:
    """Request lines in every batch the emulator was sent."""
    return sum(batch.request_counts["total"] for batch in emulator.store.batches.values())


def write_rows(path: Path, prompts: list[str], prefix: str) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": f"{prefix}{n}", "prompt": prompt}) + "\n"
            for n, prompt in enumerate(prompts)
        )
    )
    return path


def open_ledger(db_url: str, emulator: Any) -> Ledger:
    return Ledger.open(db_url, base_url=emulator.base_url, poll_min=0, poll_max=0.05)


def run_to_the_end(ledger: Ledger, tmp_path: Path, run: str, prompts: list[str], **options: Any):
    """Submit `prompts` as run `run` (ids `<run>0`, `<run>1`, ...) and reconcile it to the end;
    the plan."""
    source = write_rows(tmp_path / f"{run}.jsonl", prompts, run)
    plan = ledger.submit(source, run=run, model="gpt-4o-mini", **options)
    ledger.reconcile(run=run, until_done=True, timeout=60, **FAST)
    return plan


def request_rows(engine: Engine, run: str) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Request).join(Run, Run.id == Request.run_id).where(Run.name == run)
        ).all()
    return {row.custom_id: row for row in rows}


def outcome(row: Any) -> tuple[Any, ...]:
    """What a request row says of its answer: status, HTTP status and tokens."""
    return row.status, row.http_status, row.input_tokens, row.output_tokens


def test_a_second_run_of_the_same_prompts_sends_nothing_and_answers_everything(
    db_url: str, tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Every request reused: no batch sent, every request succeeded with the earlier answer,
    `reused_from` naming the request that paid, costing nothing."""
    prompts = ["one", "two", "three"]
    with open_ledger(db_url, emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", prompts)
        sent_before = lines_sent(emulator)
        plan = run_to_the_end(ledger, tmp_path, "b", prompts, reuse=True)
        first = {r.line_number: r for r in ledger.results("a")}
        again = list(ledger.results("b"))
        [status] = ledger.status("b")
        a_rows, b_rows = request_rows(ledger.engine, "a"), request_rows(ledger.engine, "b")
    assert sent_before == 3 and lines_sent(emulator) == 3
    assert plan.reused_requests == 3 and plan.sent_jobs == () and plan.request_count == 3
    assert [r.custom_id for r in again] == ["b0", "b1", "b2"]
    assert all(r.status == "succeeded" for r in again)
    assert [r.text for r in again] == [first[r.line_number].text for r in again]
    assert [r.reused_from for r in again] == [a_rows[f"a{n}"].id for n in range(3)]
    assert {row.cost_usd for row in b_rows.values()} == {0.0}
    assert [outcome(b_rows[f"b{n}"]) for n in range(3)] == [
        outcome(a_rows[f"a{n}"]) for n in range(3)
    ]
    assert all(outcome(row)[1:] != (None, None, None) for row in b_rows.values())
    assert status["job_states"] == {"normalized": 1}
    assert status["request_statuses"] == {"succeeded": 3}


def test_only_the_new_half_is_sent(
    db_url: str, tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Half the prompts seen before: only the other half goes to the provider."""
    with open_ledger(db_url, emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one", "two"])
        plan = run_to_the_end(ledger, tmp_path, "b", ["one", "new1", "two", "new2"], reuse=True)
        results = list(ledger.results("b"))
    assert lines_sent(emulator) == 2 + 2
    assert plan.reused_requests == 2 and sum(job.requests for job in plan.sent_jobs) == 2
    assert [(r.custom_id, r.status, r.reused_from is not None) for r in results] == [
        ("b0", "succeeded", True),
        ("b1", "succeeded", False),
        ("b2", "succeeded", True),
        ("b3", "succeeded", False),
    ]
    assert [r.text for r in results] == ["Echo: one", "Echo: new1", "Echo: two", "Echo: new2"]


def test_identical_requests_of_one_run_are_sent_once_and_answered_each(
    db_url: str, tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Within a run, each copy keeps its custom_id and line and gets the one send's answer."""
    with open_ledger(db_url, emulator) as ledger:
        plan = run_to_the_end(ledger, tmp_path, "a", ["x", "y", "x", "x", "y"], reuse=True)
        results = list(ledger.results("a"))
        rows = request_rows(ledger.engine, "a")
    assert lines_sent(emulator) == 2
    assert plan.duplicates == 3 and plan.request_count == 5
    assert [(r.custom_id, r.line_number, r.text) for r in results] == [
        ("a0", 1, "Echo: x"),
        ("a1", 2, "Echo: y"),
        ("a2", 3, "Echo: x"),
        ("a3", 4, "Echo: x"),
        ("a4", 5, "Echo: y"),
    ]
    assert [r.reused_from for r in results] == [
        None,
        None,
        rows["a0"].id,
        rows["a0"].id,
        rows["a1"].id,
    ]
    assert all(rows[c].status == "succeeded" for c in rows)
    assert [rows[c].cost_usd for c in ("a2", "a3", "a4")] == [0.0, 0.0, 0.0]
    answered = [(rows[c].http_status, rows[c].output_tokens) for c in ("a0", "a0", "a1")]
    assert [(rows[c].http_status, rows[c].output_tokens) for c in ("a2", "a3", "a4")] == answered


@pytest.mark.parametrize("status", ["failed", "truncated", "invalid", "filtered", "expired"])
def test_an_answer_that_did_not_succeed_is_never_reused(
    db_url: str, tmp_path: Path, emulator: Any, api_key: str, status: str
) -> None:
    """Only a succeeded request is reused: one recorded with any other status is sent again."""
    with open_ledger(db_url, emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one", "two"])
        with ledger.engine.begin() as connection:
            connection.execute(
                update(Request).where(Request.custom_id == "a0").values(status=status)
            )
        plan = run_to_the_end(ledger, tmp_path, "b", ["one", "two"], reuse=True)
        results = list(ledger.results("b"))
    assert lines_sent(emulator) == 2 + 1
    assert plan.reused_requests == 1
    assert [(r.custom_id, r.reused_from is None) for r in results] == [("b0", True), ("b1", False)]


def test_reuse_is_off_by_default_on_in_the_config_and_no_reuse_wins(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """Reuse is asked for: off by default, on with `reuse = true` in ledger.toml's
    `[defaults]`, and `--no-reuse` wins over the file."""
    for run in ("x", "b", "c"):
        write_rows(tmp_path / f"{run}.jsonl", ["one"], run)
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one"])
        by_default = ledger.submit(tmp_path / "x.jsonl", run="x", model="gpt-4o-mini", send=False)
    (tmp_path / "ledger.toml").write_text("[defaults]\nreuse = true\n")
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        by_file = ledger.submit(tmp_path / "b.jsonl", run="b", model="gpt-4o-mini", send=False)
    assert (by_default.reused_requests, by_file.reused_requests) == (0, 1)
    args = ("submit", str(tmp_path / "c.jsonl"), "--run", "c", "--model", "gpt-4o-mini")
    assert "reused:" not in invoke(tmp_path, *args, "--no-reuse", "--dry-run")


def invoke(tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "ledger.db"), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_the_plan_prints_how_many_were_reused_and_the_money_saved(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """`submit --reuse --dry-run` prints the reused count, the saved estimate at today's prices
    and the within-run duplicates; resubmitting prints the same and records nothing twice."""
    (tmp_path / "ledger.toml").write_text(PRICED)
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one", "two"], max_output_tokens=100)
    write_rows(tmp_path / "b.jsonl", ["one", "two", "three", "three"], "b")
    args = ("submit", str(tmp_path / "b.jsonl"), "--run", "b", "--model", "gpt-4o-mini")
    out = invoke(tmp_path, *args, "--reuse", "--dry-run", "--max-output-tokens", "100")
    # Their 16 input tokens and 2 x 100 output tokens at most, at $10 per million tokens.
    assert "reused: 2 requests answered from earlier runs, not sent; saved: $0.00216" in out
    assert "dry run: 1 job(s) built and recorded, held" in out
    assert "duplicates: 1 requests identical to an earlier one of this run" in out
    assert "(reused: not sent)" in out
    again = invoke(tmp_path, *args, "--reuse", "--dry-run", "--max-output-tokens", "100")
    assert "already built from this input" in again and "reused: 2 requests" in again
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        assert len(request_rows(ledger.engine, "b")) == 4
        with ledger.engine.connect() as connection:
            jobs = connection.execute(select(Job.state).join(Run).where(Run.name == "b")).all()
    assert sorted(state for (state,) in jobs) == ["built", "normalized"]


def test_results_carry_reused_from_in_csv_and_jsonl(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """`ledger results` shows a reused answer like any other, with a `reused_from` column."""
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one"])
        run_to_the_end(ledger, tmp_path, "b", ["one", "two"], reuse=True)
        source = request_rows(ledger.engine, "a")["a0"].id
    rows = list(csv.DictReader(io.StringIO(invoke(tmp_path, "results", "b", "--format", "csv"))))
    assert [(r["custom_id"], r["text"], r["reused_from"]) for r in rows] == [
        ("b0", "Echo: one", str(source)),
        ("b1", "Echo: two", ""),
    ]
    lines = [json.loads(line) for line in invoke(tmp_path, "results", "b").splitlines()]
    assert [line["reused_from"] for line in lines] == [source, None]


def test_a_crash_while_recording_leaves_no_run_and_a_resubmission_records_it_once(
    tmp_path: Path, emulator: Any, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside the build's transaction records nothing of the run (no reused job, no
    rows); submitting again records it once, and a third submit changes nothing."""
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one", "two"])
        write_rows(tmp_path / "b.jsonl", ["one", "two", "two"], "b")

        def crash(*_: Any) -> None:
            raise LedgerError("killed mid-record")

        monkeypatch.setattr(reuse_record, "name_first_copies", crash)
        with pytest.raises(LedgerError):
            ledger.submit(tmp_path / "b.jsonl", run="b", model="gpt-4o-mini", reuse=True)
        with ledger.engine.connect() as connection:
            assert connection.execute(select(Run.name)).scalars().all() == ["a"]
            assert len(connection.execute(select(Job.id)).all()) == 1
        monkeypatch.undo()
        first = ledger.submit(tmp_path / "b.jsonl", run="b", model="gpt-4o-mini", reuse=True)
        second = ledger.submit(tmp_path / "b.jsonl", run="b", model="gpt-4o-mini", reuse=True)
        results = list(ledger.results("b"))
        rows = request_rows(ledger.engine, "b")
    assert lines_sent(emulator) == 2
    assert (first.reused_requests, second.reused_requests, second.existing) == (3, 3, True)
    assert len(rows) == 3 and [r.text for r in results] == ["Echo: one", "Echo: two", "Echo: two"]


def test_retry_never_resends_reused_requests(tmp_path: Path, emulator: Any, api_key: str) -> None:
    """`ledger retry` of a run whose requests were all reused finds nothing to send."""
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one", "two"])
        run_to_the_end(ledger, tmp_path, "b", ["one", "two"], reuse=True)
        plan = ledger.retry("b")
    assert not plan.jobs
    assert lines_sent(emulator) == 2


def test_a_retried_first_copy_answers_its_duplicates_again(
    db_url: str, tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """A within-run duplicate is never sent by a retry: its first copy is, and the retry job's
    answer becomes the duplicate's too."""
    with open_ledger(db_url, emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["x", "x", "y"], reuse=True)
        with ledger.engine.begin() as connection:
            connection.execute(
                update(Request)
                .where(Request.custom_id.in_(["a0", "a1"]))
                .values(status="failed", http_status=500)
            )
        plan = ledger.retry("a", ["failed"])
        ledger.reconcile(run="a", until_done=True, timeout=60, **FAST)
        results = list(ledger.results("a"))
        rows = request_rows(ledger.engine, "a")
    [(retry_job, _, count, _)] = plan.jobs
    assert count == 1 and lines_sent(emulator) == 2 + 1
    assert [(r.custom_id, r.status, r.text) for r in results] == [
        ("a0", "succeeded", "Echo: x"),
        ("a1", "succeeded", "Echo: x"),
        ("a2", "succeeded", "Echo: y"),
    ]
    assert rows["a1"].status == "succeeded" and rows["a1"].job_id == retry_job
    assert rows["a1"].reused_from == rows["a0"].id


def test_parquet_prices_a_copied_answer_at_nothing_and_names_its_source(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """In the Parquet export a reused answer's cost is 0.0 (its row's) and `reused_from` an
    int column; the answer sent keeps its own cost."""
    pq = pytest.importorskip("pyarrow.parquet")
    with open_ledger(str(tmp_path / "ledger.db"), emulator) as ledger:
        run_to_the_end(ledger, tmp_path, "a", ["one"])
        run_to_the_end(ledger, tmp_path, "b", ["one", "two"], reuse=True)
        source = request_rows(ledger.engine, "a")["a0"].id
        sent_cost = request_rows(ledger.engine, "b")["b1"].cost_usd
    out = tmp_path / "b.parquet"
    invoke(tmp_path, "results", "b", "--format", "parquet", "-o", str(out))
    table = pq.read_table(out)
    rows = table.to_pylist()
    assert str(table.schema.field("reused_from").type) == "int64"
    assert [(r["custom_id"], r["reused_from"], r["cost_usd"]) for r in rows] == [
        ("b0", source, 0.0),
        ("b1", None, sent_cost),
    ]
    assert sent_cost is not None and sent_cost > 0
