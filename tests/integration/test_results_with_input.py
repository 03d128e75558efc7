"""`ledger results --with-input`: each result carries its input row's own fields (an eval's gold
label beside the answer); every result names its model, job and batch, in CSV too."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cli import cli
from ledger import Ledger


def results(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["--db", str(tmp_path / "ledger.db"), "results", *args], catch_exceptions=False
    )


def finished_run(tmp_path: Path, emulator: Any, name: str, input_name: str, text: str) -> Ledger:
    (tmp_path / input_name).write_text(text)
    ledger = Ledger.open(
        tmp_path / "ledger.db", base_url=emulator.base_url, poll_min=0, poll_max=0.05
    )
    ledger.submit(tmp_path / input_name, run=name, model="gpt-4o-mini", max_requests=2)
    ledger.reconcile(run=name, until_done=True, timeout=60, interval=0.01, jitter=0.0)
    return ledger


def test_jsonl_results_carry_the_input_row_and_name_model_job_and_batch(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """A JSONL eval with a gold label and a blank line: each result has its row as `input`
    (gold included), and its model, job id and batch id."""
    rows = [{"id": f"q{i}", "prompt": f"say {i}", "gold": f"answer {i}"} for i in range(3)]
    text = json.dumps(rows[0]) + "\n\n" + "".join(json.dumps(r) + "\n" for r in rows[1:])
    ledger = finished_run(tmp_path, emulator, "ev", "ev.jsonl", text)
    outcome = results(tmp_path, "ev", "--with-input")
    assert outcome.exit_code == 0, outcome.output
    lines = [json.loads(line) for line in outcome.output.splitlines()]
    assert [line["input"] for line in lines] == rows
    assert [line["line_number"] for line in lines] == [1, 3, 4]
    assert all(line["model"].startswith("gpt-4o-mini") for line in lines)
    assert [line["job_id"] for line in lines] == [1, 1, 2]
    assert all(line["batch_id"].startswith("batch_") for line in lines)
    assert "input" not in json.loads(results(tmp_path, "ev").output.splitlines()[0])
    ledger.close()


def test_csv_results_end_with_model_job_batch_and_the_input_row(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """A CSV eval with a column the build ignores (gold): the CSV results end with model,
    job_id, batch_id, reused_from and, with --with-input, the row as JSON text, unknown column
    included."""
    text = "id,prompt,gold\nq0,say 0,yes\nq1,say 1,no\nq2,say 2,maybe\n"
    ledger = finished_run(tmp_path, emulator, "cv", "cv.csv", text)
    outcome = results(tmp_path, "cv", "--format", "csv", "--with-input")
    assert outcome.exit_code == 0, outcome.output
    table = list(csv.DictReader(io.StringIO(outcome.output)))
    assert list(table[0])[-6:] == [
        "model",
        "provider",
        "job_id",
        "batch_id",
        "reused_from",
        "input",
    ]
    assert [json.loads(row["input"])["gold"] for row in table] == ["yes", "no", "maybe"]
    assert [row["job_id"] for row in table] == ["1", "1", "2"]
    assert all(row["batch_id"].startswith("batch_") and row["model"] for row in table)
    plain = list(csv.reader(io.StringIO(results(tmp_path, "cv", "--format", "csv").output)))
    assert plain[0][-5:] == ["model", "provider", "job_id", "batch_id", "reused_from"]
    ledger.close()


def test_with_input_refuses_an_input_changed_since_the_build(
    tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """The rows must be the ones the run was built from: a changed file is refused (exit 2)."""
    ledger = finished_run(tmp_path, emulator, "ch", "ch.jsonl", '{"id": "a", "prompt": "x"}\n')
    (tmp_path / "ch.jsonl").write_text('{"id": "a", "prompt": "y"}\n')
    outcome = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "ledger.db"), "results", "ch", "--with-input"]
    )
    assert outcome.exit_code == 2 and "changed since run 'ch' was built" in outcome.output
    ledger.close()
