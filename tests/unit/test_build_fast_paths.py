"""The build's fast paths promise the same result as the general code they shortcut: the
commonest simple row (an id and a prompt, the shared parameters) makes the same bytes, body and
bounds as any other row, to one target or fanned out to several; the commonest chat message counts
the same tokens; request rows copied from the spool (or read back on another database) name the
job whose shard holds them, shards keyed by provider and model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.buildkit import query, shard_lines, submit, write_jsonl

from cli import cli
from ledger.build.bodies import BatchRequest, RowProblem
from ledger.build.body_options import BodyOptions
from ledger.build.endpoints import CHAT, RESPONSES
from ledger.build.targets import RowMaker, TargetParser
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
    {"id": "q5", "prompt": "to another provider", "model": "groq:llama-3.1-8b-instant"},
]
#: One target, and three over three providers (every row without a model goes to each).
TARGETS = [("gpt-4o-mini",), ("gpt-4o-mini", "anthropic:claude-haiku-4-5", "groq:gpt-4o-mini")]


def maker(
    endpoint: str, models: tuple[str, ...], keep_bodies: bool = False, **options: Any
) -> RowMaker:
    parser = TargetParser("openai", ("openai", "anthropic", "groq"), "claude-haiku-4-5".__eq__)
    targets = [parser.parse(model) for model in models]
    body = BodyOptions(endpoint=endpoint, **options)
    return RowMaker(body, parser, targets, keep_bodies=keep_bodies)


def fail(problem: RowProblem, _line: int) -> None:
    pytest.fail(str(problem))


@pytest.mark.parametrize("models", TARGETS)
@pytest.mark.parametrize("keep_bodies", [True, False])
@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("row", ROWS)
def test_a_prompt_row_built_fast_is_the_same_request_as_built_in_general(
    endpoint: str,
    options: dict[str, Any],
    row: dict[str, Any],
    keep_bodies: bool,
    models: tuple[str, ...],
) -> None:
    """Provider, custom_id, line bytes, body, output bound and whether its checks are shared
    all agree, whether the body is built as a dict or the line from its target's template (and
    read back); a row fanned out makes one request per target, in --model order."""
    rows = maker(endpoint, models, keep_bodies, **options)
    fast = rows.requests([(7, row, b"")], fail)
    made = rows(row, b"", 7)
    general: list[BatchRequest] = made if isinstance(made, list) else [made]
    assert len(fast) == len(general) == (len(models) if "model" not in row else 1)
    for quick, slow in zip(fast, general, strict=True):
        assert quick.prompt == row["prompt"]  # built by the fast path
        assert (quick.body is None) is not keep_bodies
        assert (quick.provider, quick.custom_id, quick.model, quick.line) == (
            slow.provider,
            slow.custom_id,
            slow.model,
            slow.line,
        )
        assert quick.parsed_body() == slow.body
        assert (quick.max_output_tokens, quick.inputs, quick.shared) == (
            slow.max_output_tokens,
            slow.inputs,
            slow.shared,
        )
        assert quick.shared is not options.get("json_mode", False)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"id": "q1", "prompt": "  "}, "prompt", "empty"),
        ({"id": "q 1", "prompt": "hi"}, "id", "' ' is not allowed (only A-Z a-z 0-9 _ . : -)"),
        ({"id": "q1", "prompt": "hi", "model": ""}, "model", "must be a non-empty string"),
        ({"id": "q1", "prompt": 3}, "prompt", "must be a string"),
        (
            {"id": "q1", "prompt": "hi", "model": "antropic:claude-haiku-4-5"},
            "model",
            "unknown provider 'antropic' in 'antropic:claude-haiku-4-5' (known: anthropic, "
            "groq, openai)",
        ),
    ],
)
def test_rows_the_fast_path_leaves_alone_get_their_usual_problem(
    row: dict[str, Any], field: str, message: str
) -> None:
    """A bad row is reported with its field and reason, and the good ones around it are built."""
    rows = maker(CHAT, ("gpt-4o-mini",))
    problems: list[tuple[int, RowProblem]] = []
    records = [
        (1, {"id": "a", "prompt": "x"}, b""),
        (2, row, b""),
        (3, {"id": 12, "prompt": "y"}, b""),
    ]
    made = rows.requests(records, lambda problem, n: problems.append((n, problem)))
    assert [r.custom_id for r in made] == ["a", "12"]
    [(line, problem)] = problems
    assert (line, problem.field, problem.message) == (2, field, message)


def test_a_custom_id_too_long_for_its_fanned_suffix_is_the_rows_problem() -> None:
    """Fanned out to two targets, a 62-character id would pass 64 with `-m1`: that row is
    refused (custom_id), the next one goes to both."""
    rows = maker(RESPONSES, ("gpt-4o-mini", "groq:gpt-4o-mini"))
    problems: list[tuple[int, RowProblem]] = []
    records = [(1, {"id": "x" * 62, "prompt": "p"}, b""), (2, {"id": "ok", "prompt": "p"}, b"")]
    made = rows.requests(records, lambda problem, n: problems.append((n, problem)))
    assert [(r.provider, r.custom_id) for r in made] == [("openai", "ok-m1"), ("groq", "ok-m2")]
    [(line, problem)] = problems
    assert (line, problem.field) == (1, "custom_id") and "-m1" in problem.message
    assert rows.requests([(1, {"id": "x" * 61, "prompt": "p"}, b"")], fail)[1].custom_id == (
        "x" * 61 + "-m2"
    )


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


@pytest.mark.parametrize(
    ("models", "options"),
    [
        # Per-row models, the same model name at two providers.
        (["gpt-4o-mini", "gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o", "groq:gpt-4o-mini"], ()),
        (["gpt-4o-mini", "groq:gpt-4o-mini", "groq:gpt-4o-mini", "gpt-4o-mini"], ()),
        # Every row fanned out to three targets, two of them one model name.
        (
            [None] * 5,
            ("--model", "gpt-4o-mini", "--model", "groq:gpt-4o-mini", "--model", "gpt-4o"),
        ),
    ],
)
def test_request_rows_name_the_job_whose_shard_holds_them(
    tmp_path: Path, db_url: str, models: list[str | None], options: tuple[str, ...]
) -> None:
    """Shards of several providers and models, cut at two requests: each request row's job is
    its shard's (copied from the spool on SQLite, read back in batches elsewhere), and its line
    number and token estimate are recorded."""
    rows = [
        {"id": f"r{n}", "prompt": "hello", **({"model": m} if m else {})}
        for n, m in enumerate(models, 1)
    ]
    write_jsonl("in.jsonl", rows)
    args = ["--db", db_url, "submit", "in.jsonl", "--max-requests", "2", *options, "--dry-run"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    in_shard = {
        line["custom_id"]: (index, line["body"]["model"])
        for index, shard in enumerate(shard_lines("in"), 1)
        for line in shard
    }
    recorded = query(
        "select custom_id, line_number, requests.est_input_tokens, shard_index, jobs.model "
        "from requests join jobs on jobs.id = requests.job_id",
        db_url,
    )
    assert {r["custom_id"]: (r["shard_index"], r["model"]) for r in recorded} == in_shard
    fanned = options.count("--model")
    assert sorted((r["custom_id"], r["line_number"]) for r in recorded) == sorted(
        (f"r{n}-m{place}" if fanned else f"r{n}", n)
        for n in range(1, len(models) + 1)
        for place in range(1, max(fanned, 1) + 1)
    )
    assert {r["est_input_tokens"] for r in recorded} == {8}
    if db_url.startswith("sqlite"):
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
