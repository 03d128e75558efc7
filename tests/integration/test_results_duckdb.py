"""The queries docs/results.md shows: DuckDB over a Parquet export of an emulated run (and the
ledger-side queries, which DuckDB sends through its sqlite extension, against the real schema)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger

DOC = Path(__file__).parents[2] / "docs" / "results.md"
COUNT = 30


def documented_queries(section: str) -> list[str]:
    """The ```sql blocks of one `###` section of docs/results.md, in order."""
    text = DOC.read_text()
    start = text.index(f"### {section}\n")
    end = text.find("\n#", start + 4)
    return re.findall(r"```sql\n(.*?)```", text[start : end if end > 0 else None], re.S)


@pytest.fixture
def exported(tmp_path: Path, emulator: Any, api_key: str) -> Path:
    """questions.jsonl (a gold label on every row, right for the even ones), run as eval-1 with a
    fifth of its requests failing, exported to eval-1.parquet with its input rows; returns the
    folder."""
    questions = tmp_path / "questions.jsonl"
    rows = (
        {"id": f"q{i:03d}", "prompt": f"say {i}", "gold": f"Echo: say {i if i % 2 == 0 else -1}"}
        for i in range(COUNT)
    )
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    emulator.configure(scenario="request_failures", failure_rate=0.2)
    db = tmp_path / "ledger.db"
    with Ledger.open(db, base_url=emulator.base_url, poll_min=0, poll_max=0.05) as ledger:
        ledger.submit(questions, run="eval-1", model="gpt-4o-mini", max_requests=12)
        ledger.reconcile(run="eval-1", until_done=True, timeout=60, interval=0.01, jitter=0.0)
    out = tmp_path / "eval-1.parquet"
    args = ["--db", str(db), "results", "eval-1", "--format", "parquet", "--with-input"]
    result = CliRunner().invoke(cli, [*args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_the_documented_duckdb_queries_over_parquet(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens and cost per model, the failures with their errors, accuracy against the gold
    labels (from --with-input's column, and joined from the input file)."""
    monkeypatch.chdir(exported)
    per_model, failures, accuracy, joined = documented_queries("Over the Parquet file")
    rows = pq.read_table("eval-1.parquet").to_pylist()
    failed = [r for r in rows if r["status"] != "succeeded"]
    answered = [r for r in rows if r["status"] == "succeeded"]
    assert failed and answered
    duck = duckdb.connect()

    models = duck.execute(per_model).fetchall()
    assert {(p, m) for p, m, *_ in models} == {("openai", r["model"]) for r in rows}
    assert sum(n for _, _, n, *_ in models) == COUNT
    assert sum(t or 0 for *_, t, _, _ in models) == sum(r["input_tokens"] or 0 for r in rows)
    cost = sum(c or 0 for *_, c in models)
    assert cost == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-5)

    listed = duck.execute(failures).fetchall()
    assert [(line, error) for line, _, _, _, error, _ in listed] == [
        (r["line_number"], r["error_code"]) for r in failed
    ]
    assert all(message for *_, message in listed)

    correct = [r for r in answered if int(r["custom_id"][1:]) % 2 == 0]
    by_model = duck.execute(accuracy).fetchall()
    assert sum(n for _, n, _, _ in by_model) == len(answered)
    assert sum(right for _, _, right, _ in by_model) == len(correct)
    [(count, right, ratio)] = duck.execute(joined).fetchall()
    assert (count, right) == (len(answered), len(correct))
    assert ratio == pytest.approx(len(correct) / len(answered), abs=1e-4)


def test_the_documented_ledger_queries_fit_its_schema(exported: Path) -> None:
    """The SELECTs shown for DuckDB's sqlite extension, run by SQLite itself on the ledger
    attached under the same name (the extension downloads at run time, so not here)."""
    cost_per_model, failures = (
        "\n".join(
            line for line in query.splitlines() if not re.match(r"(INSTALL|LOAD|ATTACH) ", line)
        )
        for query in documented_queries("Over the SQLite ledger")
    )
    rows = pq.read_table(exported / "eval-1.parquet").to_pylist()
    connection = sqlite3.connect(":memory:")
    connection.execute("ATTACH ? AS ledger", (str(exported / "ledger.db"),))
    [(model, requests, input_tokens, _, cost)] = connection.execute(cost_per_model).fetchall()
    assert (model, requests) == ("gpt-4o-mini", COUNT)
    assert input_tokens == sum(r["input_tokens"] or 0 for r in rows)
    assert cost == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-6)
    listed = connection.execute(failures).fetchall()
    assert [(line, code) for line, _, _, _, code, _ in listed] == [
        (r["line_number"], r["error_code"]) for r in rows if r["status"] != "succeeded"
    ]
