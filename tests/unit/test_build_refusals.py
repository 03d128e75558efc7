"""What the provider would answer 400 to is refused at build: exit 2, one line naming the input
line, the model and the parameter, nothing written. With --skip-invalid the row is reported and
left out. Warnings (a model the table does not know) are said once and the run is built."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from support.buildkit import prompts, shard_lines, submit, write_jsonl


def chat_line(custom_id: str, **body: object) -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"messages": [{"role": "user", "content": "hi"}], **body},
    }


def assert_refused(result: Result, line: str, tmp_path: Path) -> None:
    """Exit 2, exactly one error line, no run directory."""
    assert result.exit_code == 2, result.output
    errors = [text for text in result.stderr.splitlines() if not text.startswith("warning:")]
    assert errors == [f"error: {line}"]
    assert not (tmp_path / "runs").exists()


def test_temperature_on_gpt_5_is_refused_naming_the_line(tmp_path: Path) -> None:
    """gpt-5 takes only the default temperature: the row's 0.2 is refused at line 2."""
    write_jsonl("in.jsonl", [*prompts(1), {"id": "b", "prompt": "x", "temperature": 0.2}])
    result = submit("in.jsonl", "--model", "gpt-5")
    assert_refused(
        result,
        "in.jsonl:2: model gpt-5: temperature: 0.2 is refused (400 unsupported_value): only the "
        "default (1)",
        tmp_path,
    )


def test_temperature_on_claude_opus_4_7_is_refused(tmp_path: Path) -> None:
    """Opus 4.7 deprecated temperature: --temperature refuses the first row."""
    write_jsonl("in.jsonl", prompts(2))
    result = submit(
        "in.jsonl", "--model", "claude-opus-4-7", "--provider", "anthropic", "--temperature", "0.5"
    )
    assert_refused(
        result,
        "in.jsonl:1: model claude-opus-4-7: temperature: deprecated for this model: the API "
        "answers 400",
        tmp_path,
    )


def test_temperature_with_top_p_on_claude_sonnet_4_5_is_refused(tmp_path: Path) -> None:
    """Sonnet 4.5 takes temperature or top_p, not both."""
    write_jsonl(
        "in.jsonl",
        [
            chat_line("a", model="claude-sonnet-4-5", temperature=0.5),
            chat_line("b", model="claude-sonnet-4-5", temperature=0.5, top_p=0.9),
        ],
    )
    result = submit("in.jsonl", "--provider", "anthropic")
    assert_refused(
        result,
        "in.jsonl:2: model claude-sonnet-4-5: temperature, top_p: temperature and top_p cannot "
        "both be specified for this model: keep one",
        tmp_path,
    )


def test_json_mode_without_the_word_json_is_refused(tmp_path: Path) -> None:
    """OpenAI answers 400 to JSON mode when no message says "json"."""
    write_jsonl("in.jsonl", [{"id": "a", "prompt": "Answer in JSON: 1+1"}, *prompts(1)])
    result = submit("in.jsonl", "--model", "gpt-4o-mini", "--json")
    assert_refused(
        result,
        'in.jsonl:2: model gpt-4o-mini: text.format: JSON mode needs the word "json" in the '
        "messages (the API answers 400)",
        tmp_path,
    )


def test_a_prompt_over_the_context_window_is_refused(tmp_path: Path) -> None:
    """A 150k-token prompt does not fit gpt-4o-mini's 128k context."""
    write_jsonl("in.jsonl", [*prompts(1), {"id": "long", "prompt": " hello" * 150_000}])
    result = submit("in.jsonl", "--model", "gpt-4o-mini")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: in.jsonl:2: model gpt-4o-mini: input: 150,0")
    assert result.stderr.endswith("exceed the 128,000-token context window\n")
    assert not (tmp_path / "runs").exists()


def test_skip_invalid_reports_a_refused_row_and_leaves_it_out(tmp_path: Path) -> None:
    """--skip-invalid: the refused row is reported, the others are built."""
    write_jsonl("in.jsonl", [*prompts(2), {"id": "b", "prompt": "x", "temperature": 0.2}])
    result = submit("in.jsonl", "--model", "gpt-5", "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "skipped: in.jsonl:3: model gpt-5: temperature: 0.2 is refused" in result.stderr
    assert [line["custom_id"] for line in shard_lines("in")[0]] == ["q1", "q2"]


def test_a_fine_request_passes_without_warnings(tmp_path: Path) -> None:
    """A known model with accepted parameters is built, with nothing to warn about."""
    write_jsonl("in.jsonl", prompts(2, temperature=0.3))
    result = submit("in.jsonl", "--model", "gpt-4o-mini")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    assert [line["body"]["temperature"] for line in shard_lines("in")[0]] == [0.3, 0.3]


def test_an_unknown_model_warns_once_and_is_built(tmp_path: Path) -> None:
    """A model not in the table is not checked: one warning, the run is built."""
    write_jsonl("in.jsonl", prompts(3, temperature=0.3))
    result = submit("in.jsonl", "--model", "acme-1")
    assert result.exit_code == 0, result.output
    warning = (
        "warning: model acme-1: not in the model table: its parameters are not checked and it "
        "has no price"
    )
    assert result.stderr.splitlines().count(warning) == 1
    assert len(shard_lines("in")[0]) == 3


def test_ledger_toml_models_rows_are_checked(tmp_path: Path) -> None:
    """A `[models."NAME"]` row of ledger.toml adds a model the build checks."""
    Path("ledger.toml").write_text(
        '[models."acme-1"]\nprovider = "openai"\nsampling = "none"\ninput = 1\noutput = 2\n'
    )
    write_jsonl("in.jsonl", prompts(1, temperature=0.3))
    result = submit("in.jsonl", "--model", "acme-1")
    assert_refused(
        result,
        "in.jsonl:1: model acme-1: temperature: deprecated for this model: the API answers 400",
        tmp_path,
    )


def test_a_bad_models_row_in_ledger_toml_is_exit_2(tmp_path: Path) -> None:
    """A field the model table does not know is named with the file and the model."""
    Path("ledger.toml").write_text('[models."acme-1"]\ncontext = 5\n')
    write_jsonl("in.jsonl", prompts(1))
    result = submit("in.jsonl", "--model", "acme-1")
    assert result.exit_code == 2
    assert "models.\"acme-1\": unknown field 'context'" in result.stderr


def test_anthropic_refuses_an_endpoint_it_does_not_take(tmp_path: Path) -> None:
    """--provider anthropic --endpoint responses: refused before reading the input."""
    write_jsonl("in.jsonl", prompts(1))
    result = submit(
        "in.jsonl",
        "--model",
        "claude-haiku-4-5",
        "--provider",
        "anthropic",
        "--endpoint",
        "responses",
    )
    assert_refused(
        result,
        "--endpoint responses: provider anthropic takes /v1/chat/completions only",
        tmp_path,
    )


def test_anthropic_builds_chat_lines_by_default(tmp_path: Path) -> None:
    """Without --endpoint, an Anthropic run's rows become the chat lines it can translate."""
    write_jsonl("in.jsonl", prompts(1))
    result = submit("in.jsonl", "--model", "claude-haiku-4-5", "--provider", "anthropic")
    assert result.exit_code == 0, result.output
    assert shard_lines("in")[0][0]["url"] == "/v1/chat/completions"


def test_anthropic_refuses_ready_lines_of_another_endpoint(tmp_path: Path) -> None:
    """Ready /v1/responses lines cannot go to Anthropic: the first is named."""
    line = {**chat_line("a", model="claude-haiku-4-5"), "url": "/v1/responses"}
    line["body"] = {"model": "claude-haiku-4-5", "input": "hi"}
    write_jsonl("in.jsonl", [line])
    result = submit("in.jsonl", "--provider", "anthropic")
    assert_refused(
        result,
        'in.jsonl:1: field "url": provider anthropic takes /v1/chat/completions only',
        tmp_path,
    )


def test_anthropic_refuses_a_field_it_cannot_translate(tmp_path: Path) -> None:
    """A row with metadata: Anthropic has no such field, refused at build, not at send."""
    rows = [*prompts(1), {"id": "m", "prompt": "x", "metadata": {"k": "v"}}]
    write_jsonl("in.jsonl", rows)
    result = submit("in.jsonl", "--model", "claude-haiku-4-5", "--provider", "anthropic")
    assert_refused(
        result,
        "in.jsonl:2: provider anthropic: body field(s) metadata have no Anthropic translation "
        "(see docs/providers.md)",
        tmp_path,
    )


def test_a_model_without_a_price_warns(tmp_path: Path) -> None:
    """A table row with no price: the cost is unknown, and submit says so."""
    Path("ledger.toml").write_text('[models."acme-2"]\nprovider = "openai"\n')
    write_jsonl("in.jsonl", prompts(1))
    result = submit("in.jsonl", "--model", "acme-2")
    assert result.exit_code == 0, result.output
    assert (
        "warning: model acme-2: no price in the model table: its cost is unknown" in result.stderr
    )
