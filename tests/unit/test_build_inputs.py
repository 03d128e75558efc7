"""Input formats, auto-detected: ready Batch API lines (passed through), JSONL rows with prompt,
messages or input, CSV and TSV, a byte-order mark, and ids generated from line numbers."""

from __future__ import annotations

import json
from pathlib import Path

from support.buildkit import query, shard_files, shard_lines, submit, write_jsonl


def test_ready_lines_pass_through_byte_for_byte(tmp_path: Path) -> None:
    """Ready lines are checked and copied as they are; the endpoint comes from their url."""
    lines = [
        '{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", '
        '"body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}',
        '{"custom_id":"r2","method":"POST","url":"/v1/chat/completions",'
        '"body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"yo"}],"max_tokens":5}}',
    ]
    Path("ready.jsonl").write_text("\r\n".join(lines) + "\r\n")
    result = submit("ready.jsonl", "--dry-run")
    assert result.exit_code == 0, result.output
    assert shard_files("ready")[0].read_text() == "\n".join(lines) + "\n"
    [run] = query("select endpoint, model, request_count from runs")
    assert run == {"endpoint": "/v1/chat/completions", "model": "gpt-4o-mini", "request_count": 2}


def test_jsonl_prompt_rows_become_responses_requests(tmp_path: Path) -> None:
    """A prompt row is a /v1/responses request by default, with the row's id as custom_id."""
    write_jsonl("in.jsonl", [{"id": "a", "prompt": "hello"}, {"id": "b", "prompt": "bye"}])
    assert submit("in.jsonl", "--model", "gpt-4o-mini").exit_code == 0
    [[first, second]] = shard_lines("in")
    assert first == {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": "gpt-4o-mini", "input": "hello"},
    }
    assert second["custom_id"] == "b" and second["body"]["input"] == "bye"


def test_jsonl_messages_rows_become_chat_requests(tmp_path: Path) -> None:
    """A messages row keeps its conversation; --system goes first."""
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    write_jsonl("chat.jsonl", [{"custom_id": "c1", "messages": messages}])
    result = submit("chat.jsonl", "--endpoint", "chat", "--model", "gpt-4o", "--system", "Be kind.")
    assert result.exit_code == 0, result.output
    [[line]] = shard_lines("chat")
    assert line["url"] == "/v1/chat/completions"
    assert line["body"]["messages"] == [{"role": "system", "content": "Be kind."}, *messages]


def test_jsonl_input_rows_become_embeddings_requests(tmp_path: Path) -> None:
    """An input row (a string or a list) is an embeddings request."""
    write_jsonl("emb.jsonl", [{"id": "e1", "input": "cat"}, {"id": "e2", "input": ["dog", "eel"]}])
    result = submit("emb.jsonl", "--endpoint", "embeddings", "--model", "text-embedding-3-small")
    assert result.exit_code == 0, result.output
    [[first, second]] = shard_lines("emb")
    assert first["body"] == {"model": "text-embedding-3-small", "input": "cat"}
    assert second["body"]["input"] == ["dog", "eel"] and second["url"] == "/v1/embeddings"


def test_csv_rows_with_typed_columns_and_a_multiline_prompt(tmp_path: Path) -> None:
    """CSV cells become the row's fields (numbers, JSON metadata); extra columns are ignored;
    a quoted prompt over two lines keeps the line number where its row starts."""
    Path("sheet.csv").write_text(
        "id,prompt,model,max_output_tokens,temperature,metadata,notes\n"
        'a1,"Say hi",gpt-4o,20,0.5,"{""k"": ""v""}",ignored\n'
        'a2,"Line one\nline two",,,,,\n'
        ",Third,,,,,\n"
    )
    result = submit("sheet.csv", "--model", "gpt-4o-mini")
    assert result.exit_code == 0, result.output
    bodies = {line["custom_id"]: line["body"] for shard in shard_lines("sheet") for line in shard}
    assert bodies["a1"] == {
        "model": "gpt-4o",
        "input": "Say hi",
        "max_output_tokens": 20,
        "temperature": 0.5,
        "metadata": {"k": "v"},
    }
    assert bodies["a2"] == {"model": "gpt-4o-mini", "input": "Line one\nline two"}
    assert bodies["row-000005"]["input"] == "Third"
    rows = query("select custom_id, line_number from requests order by line_number")
    assert [(r["custom_id"], r["line_number"]) for r in rows] == [
        ("a1", 2),
        ("a2", 3),
        ("row-000005", 5),
    ]


def test_tsv_is_read_with_tabs(tmp_path: Path) -> None:
    """A .tsv file is tab-separated."""
    Path("t.tsv").write_text("id\tprompt\nx\thello, world\n")
    assert submit("t.tsv", "--model", "gpt-4o-mini").exit_code == 0
    assert shard_lines("t")[0][0]["body"]["input"] == "hello, world"


def test_a_byte_order_mark_is_accepted_in_csv_and_jsonl(tmp_path: Path) -> None:
    """Spreadsheet exports (BOM, CRLF) are read: the header still reads `id`, cells have no CR."""
    Path("bom.csv").write_bytes(b"\xef\xbb\xbfid,prompt\r\nk1,caf\xc3\xa9\r\n")
    assert submit("bom.csv", "--model", "gpt-4o-mini").exit_code == 0
    assert shard_lines("bom")[0][0]["custom_id"] == "k1"
    assert shard_lines("bom")[0][0]["body"]["input"] == "café"
    Path("bom.jsonl").write_bytes(b'\xef\xbb\xbf{"id": "j1", "prompt": "x"}\n')
    assert submit("bom.jsonl", "--run", "bom-jsonl", "--model", "gpt-4o-mini").exit_code == 0
    assert shard_lines("bom-jsonl")[0][0]["custom_id"] == "j1"


def test_ids_are_generated_from_line_numbers_when_absent(tmp_path: Path) -> None:
    """Rows without id get row-NNNNNN from their line; blank lines are skipped but counted."""
    Path("gen.jsonl").write_text(
        '{"prompt": "a"}\n\n{"prompt": "b"}\n{"id": "mine", "prompt": "c"}'
    )
    assert submit("gen.jsonl", "--model", "gpt-4o-mini").exit_code == 0
    ids = [line["custom_id"] for line in shard_lines("gen")[0]]
    assert ids == ["row-000001", "row-000003", "mine"]


def test_format_is_sniffed_when_the_suffix_says_nothing(tmp_path: Path) -> None:
    """A file named `data` holding JSON lines is JSONL; one holding a header is CSV."""
    Path("data").write_text(json.dumps({"id": "s1", "prompt": "x"}) + "\n")
    Path("table").write_text("id,prompt\ns2,y\n")
    assert submit("data", "--model", "gpt-4o-mini").exit_code == 0
    assert submit("table", "--model", "gpt-4o-mini").exit_code == 0
    assert shard_lines("data")[0][0]["custom_id"] == "s1"
    assert shard_lines("table")[0][0]["custom_id"] == "s2"


def test_request_rows_record_lines_and_token_estimates(tmp_path: Path) -> None:
    """One pending requests row per request, with its line and estimated tokens."""
    write_jsonl("in.jsonl", [{"id": "a", "prompt": "hello world"}])
    assert submit("in.jsonl", "--model", "gpt-4o-mini").exit_code == 0
    [row] = query("select custom_id, line_number, status, est_input_tokens, job_id from requests")
    # A string input is one user message: 3 + "user" (1) + "hello world" (2), and 3 to reply.
    assert row == {
        "custom_id": "a",
        "line_number": 1,
        "status": "pending",
        "est_input_tokens": 9,
        "job_id": 1,
    }
