"""`ledger results` orders and filters stored result lines by reading their line number,
custom_id and status from the bytes; what it reads always equals what a full parse reads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledger.results.export import CSV_COLUMNS, INPUT_COLUMN, csv_row, line_key, line_status
from ledger.results.schema import Answer, Outcome, build_result


def result_line(custom_id: str, line_number: int, **answer: Any) -> bytes:
    outcome = Outcome(custom_id, "succeeded", 200, "req_1", {}, None)
    record = build_result(
        outcome,
        Answer(**answer),
        flags=0,
        model="m",
        provider="openai",
        batch_id="b",
        job_id=7,
        line_number=line_number,
    )
    return orjson.dumps(record) + b"\n"


@pytest.mark.parametrize(
    "custom_id",
    ["plain-1", 'quote"d', "back\\slash", 'fake","status":"failed', "ünïcødé ✓", "tab\there"],
)
def test_custom_id_and_line_number_read_from_bytes_match_a_parse(custom_id: str) -> None:
    """Escaped and non-ASCII custom_ids come back exactly as JSON decodes them."""
    raw = result_line(custom_id, 41)
    assert line_key(raw) == (41, custom_id)
    assert line_status(raw) == "succeeded"


def test_a_nested_line_number_in_the_answer_is_not_taken_for_the_results() -> None:
    """Parsed JSON and tool arguments mentioning `line_number` leave the real one read."""
    raw = result_line(
        "a",
        9,
        json={"line_number": 123, "custom_id": "x"},
        text='{"line_number": 5}',
        tool_calls=[{"id": "c", "type": "function", "name": "f", "arguments": '"line_number":8'}],
        choices=[{"index": 0, "text": ',"line_number":77', "refusal": None}],
    )
    assert line_key(raw) == (9, "a")


def test_a_line_of_another_shape_is_parsed_whole() -> None:
    """A line not written in the results' key order (an older file) is still read right."""
    raw = orjson.dumps({"status": "failed", "line_number": 3, "custom_id": "z"}) + b"\n"
    assert line_key(raw) == (3, "z")
    assert line_status(raw) == "failed"


def test_csv_row_flattens_every_column_in_order() -> None:
    """Each CSV cell is the record's value, usage and error parts, or nested values as JSON."""
    record = orjson.loads(
        result_line(
            "c",
            2,
            text="hi",
            json={"a": 1},
            usage={"input_tokens": 1, "output_tokens": 2, "cached_tokens": 0},
        )
    )
    record["error"] = {"code": "e", "message": "m"}
    row = dict(zip(CSV_COLUMNS, csv_row(record), strict=True))
    assert row["line_number"] == 2 and row["custom_id"] == "c" and row["status"] == "succeeded"
    assert row["json"] == '{"a":1}' and row["text"] == "hi" and row["refusal"] == ""
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (1, 2, 0)
    assert row["reasoning_tokens"] == "" and (row["error_code"], row["error_message"]) == ("e", "m")
    assert (row["model"], row["provider"], row["job_id"], row["batch_id"]) == (
        "m",
        "openai",
        7,
        "b",
    )
    assert row["tool_calls"] == "" and row["choices"] == "" and row["http_status"] == 200
    assert csv_row({**record, INPUT_COLUMN: {"q": 1}})[-1] == '{"q":1}'
