"""The build's fast paths promise the same result as the general code they shortcut: the
commonest simple row (an id and a prompt, the shared parameters) makes the same bytes, body and
bounds as any other row; the commonest chat message counts the same tokens; a SQLite ledger's
request rows copied from the spool name the job whose shard holds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.buildkit import query, shard_lines, submit, write_jsonl

from ledger.build.bodies import RowBuilder, RowProblem
from ledger.build.body_options import BodyOptions
from ledger.build.endpoints import CHAT, RESPONSES
from ledger.usage.tokens import TOKENS_TO_PRIME_REPLY, TokenCounter, load_encoding

OPTIONS = [
    {},
    {"system": "Be brief."},
    {"system": "", "max_output_tokens": 50, "temperature": 0.2},
    {"system": "stand-in \x00text\x00 in the system prompt", "max_output_tokens": 9},
    {"json_mode": True, "system": "Reply in JSON."},
]
ROWS = [
    {"id": "q1", "prompt": "hello"},
    {"custom_id": "c-1", "prompt": "hello", "model": "gpt-4o"},
    {"custom_id": "", "id": "q2", "prompt": 'héllo \u2028 "quoted"'},
    {"prompt": "no id at all"},
    {"id": "q3", "prompt": "hi", "messages": None, "temperature": None},
    {"id": "q4", "prompt": "\x00custom_id\x00 and \x00text\x00, </script> 😀"},
]


@pytest.mark.parametrize("keep_bodies", [True, False])
@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("row", ROWS)
def test_a_prompt_row_built_fast_is_the_same_request_as_built_in_general(
    endpoint: str, options: dict[str, Any], row: dict[str, Any], keep_bodies: bool
) -> None:
    """Line bytes, body, output bound and whether its checks are shared all agree, whether
    the body is built as a dict or the line from the model's template (and read back)."""
    builder = RowBuilder(
        BodyOptions(endpoint=endpoint, model="gpt-4o-mini", **options), keep_bodies=keep_bodies
    )
    [fast] = builder.requests([(7, row, b"")], lambda problem, _n: pytest.fail(str(problem)))
    general = builder._request(row, 7)
    assert (fast.body is None) is not keep_bodies
    assert (fast.custom_id, fast.model, fast.line, fast.parsed_body()) == (
        general.custom_id,
        general.model,
        general.line,
        general.body,
    )
    assert (fast.max_output_tokens, fast.inputs, fast.shared) == (
        general.max_output_tokens,
        general.inputs,
        general.shared,
    )
    assert fast.shared is not options.get("json_mode", False)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"id": "q1", "prompt": "  "}, "prompt", "empty"),
        ({"id": "q 1", "prompt": "hi"}, "id", "' ' is not allowed (only A-Z a-z 0-9 _ . : -)"),
        ({"id": "q1", "prompt": "hi", "model": ""}, "model", "must be a non-empty string"),
        ({"id": "q1", "prompt": 3}, "prompt", "must be a string"),
    ],
)
def test_rows_the_fast_path_leaves_alone_get_their_usual_problem(
    row: dict[str, Any], field: str, message: str
) -> None:
    """A bad row is reported with its field and reason, and the good ones around it are built."""
    builder = RowBuilder(BodyOptions(endpoint=CHAT, model="gpt-4o-mini"))
    problems: list[tuple[int, RowProblem]] = []
    records = [
        (1, {"id": "a", "prompt": "x"}, b""),
        (2, row, b""),
        (3, {"id": 12, "prompt": "y"}, b""),
    ]
    made = builder.requests(records, lambda problem, n: problems.append((n, problem)))
    assert [r.custom_id for r in made] == ["a", "12"]
    [(line, problem)] = problems
    assert (line, problem.field, problem.message) == (2, field, message)


def test_a_plain_chat_message_counts_as_the_general_message_walk() -> None:
    """System, user and assistant messages of role and content count 3 + role + content each
    (the cookbook's formula); a message with more fields goes the general way."""
    counter = TokenCounter(load_encoding("o200k_base"))
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "again", "name": "ada"},
    ]
    expected = sum(counter.message(m) for m in messages) + TOKENS_TO_PRIME_REPLY
    for _ in range(2):  # the second time from the repeated-text cache
        assert counter.chat_body({"messages": messages}) == expected
    assert counter.for_endpoint(CHAT)({"messages": messages}) == expected


def test_request_rows_name_the_job_whose_shard_holds_them(tmp_path: Path) -> None:
    """Shards of two models, cut at two requests: each request row's job is its shard's, and
    its line number and token estimate are recorded."""
    models = ["gpt-4o-mini", "gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o", "gpt-4o-mini"]
    rows = [{"id": f"r{n}", "prompt": "hello", "model": m} for n, m in enumerate(models, 1)]
    write_jsonl("in.jsonl", rows)
    assert submit("in.jsonl", "--max-requests", "2").exit_code == 0
    in_shard = {
        line["custom_id"]: index
        for index, shard in enumerate(shard_lines("in"), 1)
        for line in shard
    }
    recorded = query(
        "select custom_id, line_number, requests.est_input_tokens, shard_index from requests "
        "join jobs on jobs.id = requests.job_id"
    )
    assert {r["custom_id"]: r["shard_index"] for r in recorded} == in_shard
    assert sorted((r["custom_id"], r["line_number"]) for r in recorded) == [
        (f"r{n}", n) for n in range(1, 7)
    ]
    assert {r["est_input_tokens"] for r in recorded} == {8}
    assert query("pragma foreign_key_check") == []


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_counted_tokens_of_prompt_rows_are_those_of_their_bodies(
    tmp_path: Path, endpoint: str
) -> None:
    """A prompt row's estimate (its template's tokens plus its prompt's) is what counting the
    whole body it was built into gives, with a system prompt too."""
    prompts = [
        "hello",
        "a longer prompt, with punctuation; and numbers 12345",
        "é 😀 <|endoftext|>",
    ]
    write_jsonl("in.jsonl", [{"id": f"p{n}", "prompt": p} for n, p in enumerate(prompts)])
    args = ("--model", "gpt-4o-mini", "--endpoint", endpoint, "--system", "Be brief.")
    assert submit("in.jsonl", *args).exit_code == 0
    counter = TokenCounter(load_encoding("o200k_base"))
    url = CHAT if endpoint == "chat" else RESPONSES
    expected = {line["custom_id"]: counter.body(url, line["body"]) for line in shard_lines("in")[0]}
    recorded = query("select custom_id, est_input_tokens from requests")
    assert {r["custom_id"]: r["est_input_tokens"] for r in recorded} == expected
