"""Bad input: one line naming file, line and field, exit 2, and nothing written: no run in the
ledger, no run directory, no staging left behind. With --skip-invalid, bad rows are reported and
left out instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.buildkit import prompts, query, shard_lines, submit, write_jsonl

MODEL = ("--model", "gpt-4o-mini")


def ready(custom_id: str, url: str = "/v1/responses", **body: object) -> str:
    line = {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": "gpt-4o-mini", "input": "hi", **body},
    }
    return json.dumps(line) + "\n"


def compact_size(custom_id: str, prompt: str) -> int:
    """Bytes of the line built for a prompt row, newline included."""
    line = {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": "gpt-4o-mini", "input": prompt},
    }
    return len(json.dumps(line, separators=(",", ":"))) + 1


def row(**fields: object) -> str:
    return json.dumps(fields) + "\n"


#: name -> (file name, content, extra args, the one error line)
CASES: dict[str, tuple[str, bytes, tuple[str, ...], str]] = {
    "invalid utf-8": (
        "in.jsonl",
        row(id="a", prompt="ok").encode() + b'{"id": "b", "prompt": "caf\xe9"}\n',
        MODEL,
        "in.jsonl:2: invalid UTF-8 (byte 0xe9 at column 27)",
    ),
    "invalid utf-8 in csv": (
        "in.csv",
        b"id,prompt\na,ok\nb,caf\xe9\n",
        MODEL,
        "in.csv:3: invalid UTF-8 (byte 0xe9 at column 6)",
    ),
    "not a json object": (
        "in.jsonl",
        (row(id="a", prompt="x") + '["b", "y"]\n').encode(),
        MODEL,
        "in.jsonl:2: not a JSON object (a list)",
    ),
    "not json": (
        "in.jsonl",
        b'{"id": "a", "prompt": \n',
        MODEL,
        "in.jsonl:1: not valid JSON (unexpected end of data: line 1 column 23 (char 22))",
    ),
    "missing prompt": (
        "in.jsonl",
        (row(id="a", prompt="x") + row(id="b", text="y")).encode(),
        MODEL,
        'in.jsonl:2: field "prompt": missing (each row needs prompt, messages or input)',
    ),
    "duplicate custom_id": (
        "input.jsonl",
        "".join(row(id=i, prompt="x") for i in ["a", "b", "a"]).encode(),
        MODEL,
        'input.jsonl:3: field "id": duplicate of line 1'.replace('"id"', '"custom_id"'),
    ),
    "custom_id too long": (
        "in.jsonl",
        row(custom_id="x" * 65, prompt="p").encode(),
        MODEL,
        'in.jsonl:1: field "custom_id": 65 characters, more than 64',
    ),
    "custom_id with a space": (
        "in.jsonl",
        row(id="a b", prompt="p").encode(),
        MODEL,
        "in.jsonl:1: field \"id\": ' ' is not allowed (only A-Z a-z 0-9 _ . : -)",
    ),
    "url not matching --endpoint": (
        "in.jsonl",
        ready("r1").encode(),
        ("--endpoint", "chat"),
        'in.jsonl:1: field "url": "/v1/responses" does not match the endpoint /v1/chat/completions',
    ),
    "url not matching the first line": (
        "in.jsonl",
        (ready("r1") + ready("r2", url="/v1/embeddings")).encode(),
        (),
        'in.jsonl:2: field "url": "/v1/embeddings" does not match the endpoint /v1/responses',
    ),
    "stream true": (
        "in.jsonl",
        (ready("r1") + ready("r2", stream=True)).encode(),
        (),
        'in.jsonl:2: field "body.stream": a batch request cannot stream',
    ),
    "two models in ready lines": (
        "in.jsonl",
        (ready("r1") + ready("r2", model="gpt-4o")).encode(),
        (),
        'in.jsonl:2: field "body.model": "gpt-4o" differs from "gpt-4o-mini" of line 1 '
        "(a batch takes one model; split the file or use simple rows)",
    ),
    "unknown endpoint option": (
        "in.jsonl",
        row(id="a", prompt="x").encode(),
        ("--endpoint", "images", *MODEL),
        '--endpoint: unknown endpoint "images" '
        "(choose responses, chat, embeddings, completions, moderations)",
    ),
    "unknown endpoint url": (
        "in.jsonl",
        ready("r1", url="/v1/images/generations").encode(),
        (),
        "in.jsonl:1: field \"url\": unknown endpoint '/v1/images/generations' "
        "(known: /v1/responses, /v1/chat/completions, /v1/embeddings, /v1/completions, "
        "/v1/moderations)",
    ),
    "empty input": ("in.jsonl", b"", MODEL, "in.jsonl: empty input (no requests)"),
    "only blank lines": ("in.jsonl", b"\n  \n\n", MODEL, "in.jsonl: empty input (no requests)"),
    "csv with only a header": (
        "in.csv",
        b"id,prompt\n",
        MODEL,
        "in.csv: empty input (no requests)",
    ),
    "bad csv quoting": (
        "in.csv",
        b'id,prompt\na,"fine"\nb,"never closed\n',
        MODEL,
        "in.csv:3: bad CSV: unexpected end of data",
    ),
    "csv row with too many cells": (
        "in.csv",
        b"id,prompt\na,x,extra\n",
        MODEL,
        "in.csv:2: 3 cells, but the header has 2 columns",
    ),
    "csv without a text column": (
        "in.csv",
        b"id,question\na,x\n",
        MODEL,
        "in.csv:1: bad CSV header: no prompt, messages or input column (columns: id, question)",
    ),
    "csv cell of the wrong type": (
        "in.csv",
        b"id,prompt,max_output_tokens\na,x,lots\n",
        MODEL,
        'in.csv:2: field "max_output_tokens": must be a whole number',
    ),
    "no model anywhere": (
        "in.jsonl",
        row(id="a", prompt="x").encode(),
        (),
        'in.jsonl:1: field "model": missing (give --model or a model per row)',
    ),
    "over --max-context": (
        "in.jsonl",
        (row(id="a", prompt="hi") + row(id="b", prompt="word " * 50)).encode(),
        (*MODEL, "--max-context", "40", "--max-output-tokens", "10"),
        "in.jsonl:2: needs about 58 input + 10 output tokens, more than --max-context 40",
    ),
    "a request larger than --max-bytes": (
        "in.jsonl",
        (row(id="a", prompt="x") + row(id="b", prompt="y" * 300)).encode(),
        (*MODEL, "--max-bytes", "200"),
        f"in.jsonl:2: the request is {compact_size('b', 'y' * 300)} bytes, more than the 200 a "
        "job holds",
    ),
    "body options with ready lines": (
        "in.jsonl",
        ready("r1").encode(),
        ("--system", "Be brief."),
        "--system: does not apply to ready Batch API lines (their bodies are sent as they are)",
    ),
    "ready line missing its body": (
        "in.jsonl",
        (
            ready("r1")
            + json.dumps({"custom_id": "r2", "method": "POST", "url": "/v1/responses"})
            + "\n"
        ).encode(),
        (),
        'in.jsonl:2: field "body": missing (this is a Batch API input line)',
    ),
    "missing input file": ("other.jsonl", b"", ("--run", "x"), "missing.jsonl: no such file"),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    """Each bad input: exit 2, exactly one line naming file/line/field; no run, no run dir."""
    name, content, args, message = CASES[case]
    Path(name).write_bytes(content)
    target = "missing.jsonl" if case == "missing input file" else name
    result = submit(target, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""
    assert query("select count(*) as n from runs")[0]["n"] == 0
    assert query("select count(*) as n from jobs")[0]["n"] == 0
    assert not (tmp_path / "runs").exists()
    assert not list(tmp_path.glob(".ledger-build-*"))


def test_a_late_error_removes_shards_already_written(tmp_path: Path) -> None:
    """A duplicate on the last line, after several shards were finished, still leaves nothing."""
    write_jsonl("in.jsonl", [*prompts(7), {"id": "q2", "prompt": "again"}])
    result = submit("in.jsonl", *MODEL, "--max-requests", "2")
    assert result.exit_code == 2
    assert result.stderr == 'error: in.jsonl:8: field "id": duplicate of line 2\n'.replace(
        '"id"', '"custom_id"'
    )
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert left == ["in.jsonl", "ledger.db"]


def test_skip_invalid_reports_each_bad_row_and_builds_the_rest(tmp_path: Path) -> None:
    """Each bad row is one stderr line, then a count; the good rows (a first id too) are built."""
    Path("in.jsonl").write_bytes(
        row(id="a", prompt="one").encode()
        + b"{not json}\n"
        + row(id="b", text="no prompt").encode()
        + row(id="a", prompt="dup").encode()
        + row(id="c", prompt="three").encode()
    )
    result = submit("in.jsonl", *MODEL, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "skipped: in.jsonl:2: not valid JSON (unexpected character, expected a string key: "
        "line 1 column 2 (char 1))",
        'skipped: in.jsonl:3: field "prompt": missing (each row needs prompt, messages or input)',
        'skipped: in.jsonl:4: field "custom_id": duplicate of line 1',
        "skipped 3 invalid row(s)",
    ]
    assert [(line["custom_id"], line["body"]["input"]) for line in shard_lines("in")[0]] == [
        ("a", "one"),
        ("c", "three"),
    ]
    rows = query("select custom_id, line_number from requests order by line_number")
    assert [(r["custom_id"], r["line_number"]) for r in rows] == [("a", 1), ("c", 5)]
    assert query("select request_count from runs")[0]["request_count"] == 2


def test_skip_invalid_with_nothing_valid_is_still_an_error(tmp_path: Path) -> None:
    """When every row is bad there is nothing to build: exit 2, nothing written."""
    Path("in.jsonl").write_text("nope\n[1]\n")
    result = submit("in.jsonl", *MODEL, "--skip-invalid")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "error: in.jsonl: no valid requests (2 skipped)"
    assert not (tmp_path / "runs").exists()


def test_a_foreign_directory_in_the_way_is_not_replaced(tmp_path: Path) -> None:
    """runs/<run> that this ledger did not leave is refused, untouched."""
    write_jsonl("in.jsonl", prompts(1))
    (tmp_path / "runs" / "in").mkdir(parents=True)
    (tmp_path / "runs" / "in" / "keep.txt").write_text("mine")
    result = submit("in.jsonl", *MODEL)
    assert result.exit_code == 2
    assert "exists but the ledger has no run 'in'" in result.stderr
    assert (tmp_path / "runs" / "in" / "keep.txt").read_text() == "mine"
    assert query("select count(*) as n from runs")[0]["n"] == 0


def test_a_leftover_of_an_interrupted_submit_is_replaced(tmp_path: Path) -> None:
    """A run directory whose manifest names this ledger but whose run was never committed (a
    crash between the rename and the commit) is rebuilt."""
    write_jsonl("in.jsonl", prompts(2))
    assert submit("in.jsonl", *MODEL).exit_code == 0
    manifest = (tmp_path / "runs" / "in" / "manifest.json").read_text()
    # Simulate the crash: the directory is there, the ledger's transaction never committed.
    (tmp_path / "ledger.db").unlink()
    (tmp_path / "runs" / "in" / "stale.txt").write_text("x")
    assert submit("in.jsonl", *MODEL).exit_code == 0
    assert not (tmp_path / "runs" / "in" / "stale.txt").exists()
    assert json.loads(manifest)["run"]["name"] == "in"
    assert query("select count(*) as n from requests")[0]["n"] == 2
