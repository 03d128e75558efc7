"""`ledger results --format parquet`: the rows of the JSONL and CSV results, in their order, with
typed counts and each request's cost, over a run made with the emulator."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cli import cli
from ledger import Ledger
from ledger.core.models import Request
from ledger.results.export import CSV_COLUMNS, csv_cells, find_run_results, merged_results
from ledger.results.parquet import COST_COLUMN, arrow_schema, record_batches, write_parquet

FAST = {"jitter": 0.0}
COUNT = 40


@pytest.fixture
def finished_run(tmp_path: Path, emulator: Any, api_key: str) -> Path:
    """A run of COUNT prompts (each with a gold label) over three jobs, a quarter of its requests
    failing (400/429/500)."""
    db = tmp_path / "ledger.db"
    make_run(str(db), tmp_path, emulator)
    return db


def make_run(db: str, tmp_path: Path, emulator: Any) -> None:
    """The run `eval` of `finished_run` in the ledger at `db` (a path or a URL)."""
    prompts = tmp_path / "qs.jsonl"
    rows = ({"id": f"q{i:03d}", "prompt": f"say {i}", "gold": i % 3} for i in range(COUNT))
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    emulator.configure(scenario="request_failures", failure_rate=0.25)
    with Ledger.open(db, base_url=emulator.base_url, poll_min=0, poll_max=0.05) as ledger:
        ledger.submit(prompts, run="eval", model="gpt-4o-mini", max_requests=15)
        ledger.reconcile(run="eval", until_done=True, timeout=60, interval=0.01, **FAST)


def export(db: Path | str, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--db", str(db), "results", "eval", *args])


def test_parquet_holds_the_jsonl_and_csv_rows_in_order_with_typed_columns(
    finished_run: Path, tmp_path: Path
) -> None:
    """Same rows, same order as JSONL; every CSV column (ints typed, empty cells null) + cost."""
    out = tmp_path / "eval.parquet"
    result = export(finished_run, "--format", "parquet", "-o", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    jsonl = [json.loads(line) for line in export(finished_run).output.splitlines()]
    cells = list(csv.DictReader(io.StringIO(export(finished_run, "--format", "csv").output)))

    assert table.column_names == [*CSV_COLUMNS, COST_COLUMN]
    assert table.schema.field("input_tokens").type == pa.int64()
    assert table.schema.field("line_number").type == pa.int64()
    assert table.schema.field("text").type == pa.string()
    assert table.schema.field(COST_COLUMN).type == pa.float64()
    rows = table.to_pylist()
    assert len(rows) == len(jsonl) == len(cells) == COUNT
    assert {r["status"] for r in rows} == {"succeeded", "failed"}
    for row, record, cell in zip(rows, jsonl, cells, strict=True):
        assert row["custom_id"] == record["custom_id"]
        assert row["line_number"] == record["line_number"]
        assert row["status"] == record["status"]
        assert row["http_status"] == record["http_status"]
        assert row["text"] == record["text"]
        usage = record["usage"] or {}
        for key in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"):
            assert row[key] == usage.get(key)
        assert row["error_code"] == (record["error"] or {}).get("code")
        # The CSV's cells, a null being an empty cell.
        for column in CSV_COLUMNS:
            assert ("" if row[column] is None else str(row[column])) == cell[column], column
    assert all(r["input_tokens"] > 0 for r in rows if r["status"] == "succeeded")
    assert all(r["error_message"] for r in rows if r["status"] == "failed")


def test_the_cost_is_each_requests_priced_cost(
    db_url: str, tmp_path: Path, emulator: Any, api_key: str
) -> None:
    """cost_usd is the request's cost as the ledger priced it; an answer's is positive (on
    SQLite and PostgreSQL: the lookup is each driver's SQL)."""
    make_run(db_url, tmp_path, emulator)
    out = tmp_path / "eval.parquet"
    assert export(db_url, "--format", "parquet", "-o", str(out)).exit_code == 0
    with Ledger.open(db_url) as ledger, ledger.engine.connect() as connection:
        stored = dict(connection.execute(select(Request.custom_id, Request.cost_usd)).all())
    rows = pq.read_table(out).to_pylist()
    assert {r["custom_id"]: r[COST_COLUMN] for r in rows} == stored
    assert all(r[COST_COLUMN] > 0 for r in rows if r["status"] == "succeeded")


def test_rows_are_written_in_row_groups(finished_run: Path, tmp_path: Path) -> None:
    """Records become Arrow batches of a few rows, batches become row groups of a bounded size:
    never more rows in memory than a group holds."""
    out = tmp_path / "eval.parquet"
    with Ledger.open(finished_run) as ledger:
        shards = find_run_results(ledger.engine, "eval").shards
        records = (record for _, record in merged_results(shards))
        batches = record_batches(
            ledger.engine, "eval", records, columns=CSV_COLUMNS, cells=csv_cells, batch_rows=16
        )
        sizes: list[int] = []
        seen = (sizes.append(batch.num_rows) or batch for batch in batches)
        with out.open("wb") as file:
            written = write_parquet(file, arrow_schema(CSV_COLUMNS), seen, group_rows=32)
    assert sizes == [16, 16, 8]
    assert written == COUNT
    metadata = pq.ParquetFile(out).metadata
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert groups == [32, 8]
    assert [r["line_number"] for r in pq.read_table(out).to_pylist()] == list(range(1, 41))


def test_parquet_needs_a_file(finished_run: Path, tmp_path: Path) -> None:
    """Without -o (or with -o -): exit 2, one line, nothing written to standard output."""
    for args in ([], ["-o", "-"]):
        result = export(finished_run, "--format", "parquet", *args)
        assert result.exit_code == 2
        assert result.output.strip() == "error: --format parquet writes a file: give -o FILE"


def test_results_frame_and_dataset_hold_the_parquet_rows(
    finished_run: Path, tmp_path: Path
) -> None:
    """Ledger.results_frame / results_dataset: the Parquet export's columns and rows, in order;
    counts stay integers (nullable) in the frame."""
    out = tmp_path / "eval.parquet"
    export(finished_run, "--format", "parquet", "-o", str(out))
    expected = pq.read_table(out).to_pylist()
    with Ledger.open(finished_run) as ledger:
        frame = ledger.results_frame("eval")
        dataset = ledger.results_dataset("eval")
        failed = ledger.results_frame("eval", statuses=["failed"])
    assert list(frame.columns) == [*CSV_COLUMNS, COST_COLUMN]
    assert str(frame["input_tokens"].dtype) == "Int64"
    assert str(frame[COST_COLUMN].dtype) == "Float64"
    as_rows = [
        {k: (None if v is None or v != v else v) for k, v in row.items()}  # NA and NaN: None
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records")
    ]
    assert as_rows == expected
    assert dataset.column_names == [*CSV_COLUMNS, COST_COLUMN]
    assert dataset.to_list() == expected
    assert list(failed["custom_id"]) == [
        r["custom_id"] for r in expected if r["status"] == "failed"
    ]


def test_a_missing_extra_is_named(finished_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pandas or datasets installed: a ConfigError (exit 2) naming the extra."""
    from ledger.errors import ConfigError

    with Ledger.open(finished_run) as ledger:
        for module, method in (
            ("pandas", ledger.results_frame),
            ("datasets", ledger.results_dataset),
        ):
            monkeypatch.setitem(__import__("sys").modules, module, None)  # import fails
            with pytest.raises(ConfigError, match=rf"llm-batch-ledger\[{module}\]"):
                method("eval")


def test_input_fields_come_along_when_asked(finished_run: Path, tmp_path: Path) -> None:
    """--with-input: Parquet has the CSV's `input` column (JSON text) before cost_usd; the frame
    and the dataset have each input field as a typed column `input.<field>`."""
    out = tmp_path / "eval.parquet"
    result = export(finished_run, "--format", "parquet", "--with-input", "-o", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    cells = list(
        csv.DictReader(io.StringIO(export(finished_run, "--format", "csv", "--with-input").output))
    )
    assert table.column_names == [*CSV_COLUMNS, "input", COST_COLUMN]
    assert table.column("input").to_pylist() == [cell["input"] for cell in cells]
    inputs = [json.loads(text) for text in table.column("input").to_pylist()]
    assert inputs[3] == {"id": "q003", "prompt": "say 3", "gold": 0}

    with Ledger.open(finished_run) as ledger:
        frame = ledger.results_frame("eval", with_input=True)
        dataset = ledger.results_dataset("eval", with_input=True)
    fields = ["input.id", "input.prompt", "input.gold"]
    assert list(frame.columns) == [*CSV_COLUMNS, *fields, COST_COLUMN]
    assert str(frame["input.gold"].dtype) == "Int64"
    assert list(frame["input.gold"]) == [i % 3 for i in range(COUNT)]
    assert list(frame["input.id"]) == list(frame["custom_id"])
    assert dataset.column_names == list(frame.columns)
    assert dataset["input.gold"] == [i % 3 for i in range(COUNT)]


def test_a_cell_that_is_no_string_is_written_as_csv_writes_it(finished_run: Path) -> None:
    """A column Parquet does not type (one added to the CSV later) holding numbers: its cells
    are the CSV's text; an empty cell is null unless the result's own field is ""."""

    def row(record: dict[str, Any]) -> list[Any]:
        return [record["custom_id"], record["line_number"] / 2, ""]

    with Ledger.open(finished_run) as ledger:
        shards = find_run_results(ledger.engine, "eval").shards
        records = (
            {**r, "note": "" if r["line_number"] == 1 else None} for _, r in merged_results(shards)
        )
        [*batches] = record_batches(
            ledger.engine, "eval", records, columns=("custom_id", "half", "note"), cells=row
        )
    table = pa.Table.from_batches(batches)
    assert table.schema.field("half").type == pa.string()
    assert table.column("half").to_pylist()[:3] == ["0.5", "1.0", "1.5"]
    assert table.column("note").to_pylist()[:3] == ["", None, None]
