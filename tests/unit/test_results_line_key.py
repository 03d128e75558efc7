"""`ledger results` orders and filters stored result lines by reading their line number,
custom_id and status from the bytes; what it reads always equals what a full parse reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.artifacts import RecordedFile
from ledger.results.export import CSV_COLUMNS, INPUT_COLUMN, ResultShard, csv_row, merged_lines
from ledger.results.linekeys import first_and_last_keys, line_key, line_status
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


def blocks_of(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


@pytest.mark.parametrize("extra", [0, 1, 100, 1 << 20])
def test_first_and_last_keys_whatever_the_blocks(extra: int) -> None:
    """A results file read in blocks of any size from a line's length up gives its first and
    last lines' keys, a line split across blocks included."""
    lines = [result_line(f"id-{n}", n) for n in (3, 5, 8)]
    block = max(map(len, lines)) + extra
    assert first_and_last_keys(blocks_of(b"".join(lines), block)) == ((3, "id-3"), (8, "id-8"))
    assert first_and_last_keys(blocks_of(lines[0], block)) == ((3, "id-3"), (3, "id-3"))


def test_no_keys_for_an_empty_file_or_a_last_line_longer_than_two_blocks() -> None:
    """When the keys cannot be known, None: the run's files are merged line by line instead."""
    assert first_and_last_keys([]) is None
    data = result_line("a", 1) + result_line("b", 2, text="long " * 100)
    assert first_and_last_keys(blocks_of(data, 64)) is None
    assert first_and_last_keys([b"not json\n"]) is None


def shard_file(tmp_path: Path, job_id: int, numbers: list[int], status: str = "") -> ResultShard:
    path = tmp_path / f"job-{job_id}.jsonl"
    data = b"".join(result_line(f"id-{n}", n) for n in numbers)
    if status:
        data = data.replace(b'"status":"succeeded"', f'"status":"{status}"'.encode())
    path.write_bytes(data)
    file = RecordedFile(name=str(path), ref=None, path=path)
    return ResultShard(job_id, file, span=first_and_last_keys([data]))


def test_jobs_of_consecutive_slices_are_read_in_turn_in_input_order(tmp_path: Path) -> None:
    """Jobs whose lines do not interleave come out whole, one after the other, in input order,
    and the status filter still applies; the same as a line-by-line merge gives."""
    late = shard_file(tmp_path, 1, [4, 5, 9])
    early = shard_file(tmp_path, 2, [1, 2, 3], status="failed")
    in_turn = list(merged_lines([late, early]))
    merged = list(merged_lines([replace(late, span=None), replace(early, span=None)]))
    assert [line_key(raw)[0] for raw in in_turn] == [1, 2, 3, 4, 5, 9]
    assert in_turn == merged
    assert [line_key(raw)[0] for raw in merged_lines([late, early], {"failed"})] == [1, 2, 3]


def test_interleaved_jobs_are_merged_with_the_newest_job_winning(tmp_path: Path) -> None:
    """A retry job whose lines fall between its parent's is merged line by line."""
    parent = shard_file(tmp_path, 1, [1, 2, 3, 4])
    retry = shard_file(tmp_path, 2, [2, 4], status="failed")
    lines = list(merged_lines([parent, retry]))
    assert [line_key(raw)[0] for raw in lines] == [1, 2, 3, 4]
    assert [line_status(raw) for raw in lines] == ["succeeded", "failed", "succeeded", "failed"]
