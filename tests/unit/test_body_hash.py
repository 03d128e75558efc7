"""A request's reuse hash is its provider and canonical body (endpoint, model, every parameter,
the input), never its custom_id: the same body hashes alike whether its line was cut from the
template, built the general way, written as messages or as a ready Batch API line in any
spacing; any difference in the body, or another provider, hashes differently."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from ledger.build.body_hash import body_hash
from ledger.build.body_options import BodyOptions
from ledger.build.endpoints import CHAT, RESPONSES
from ledger.build.ready_lines import ReadyLineChecker
from ledger.build.row_checks import BatchRequest, RowProblem
from ledger.build.targets import RowMaker, TargetParser

OPTIONS: list[dict[str, Any]] = [
    {},
    {"system": "Be brief.", "max_output_tokens": 50, "temperature": 0.2},
    {"json_mode": True, "system": "Reply in JSON."},
]


def maker(endpoint: str, **options: Any) -> RowMaker:
    parser = TargetParser("openai", ("openai", "groq"), lambda _: False)
    body = BodyOptions(endpoint=endpoint, **options)
    return RowMaker(body, parser, [parser.parse("gpt-4o-mini")], keep_bodies=False)


def fail(problem: RowProblem, _line: int) -> None:
    pytest.fail(str(problem))


def hashed(request: BatchRequest) -> bytes:
    request.provider = request.provider or "openai"
    return body_hash(request)


@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
@pytest.mark.parametrize("options", OPTIONS)
def test_the_template_and_the_general_path_hash_a_body_alike(
    endpoint: str, options: dict[str, Any]
) -> None:
    """A prompt row cut from its template and the same row built the general way (and, for
    chat, written as one user message) hash alike, whatever their custom_ids and lines."""
    rows = maker(endpoint, **options)
    [fast] = rows.requests([(1, {"id": "a", "prompt": "héllo \u2028 😀"}, b"")], fail)
    general = rows({"id": "b", "prompt": "héllo \u2028 😀"}, b"", 9)
    assert isinstance(general, BatchRequest)
    assert fast.line != general.line  # their custom_ids differ
    assert hashed(fast) == hashed(general)
    if endpoint == CHAT:
        message = {"role": "user", "content": "héllo \u2028 😀"}
        as_messages = rows({"id": "c", "messages": [message]}, b"", 3)
        assert isinstance(as_messages, BatchRequest)
        assert hashed(as_messages) == hashed(fast)


def test_a_ready_line_in_any_spacing_hashes_as_the_simple_row_of_its_body() -> None:
    """A ready line is passed through as written; its hash is that of its canonical form, the
    same as a simple row making that body, wherever its custom_id stands."""
    [row] = maker(CHAT).requests([(1, {"id": "a", "prompt": "héllo"}, b"")], fail)
    body = orjson.loads(row.line)["body"]
    spaced = {"body": body, "url": CHAT, "method": "POST", "custom_id": "z"}
    raw = json.dumps(spaced, indent=2, ensure_ascii=True).encode()
    ready = ReadyLineChecker(None, None).request(json.loads(raw), raw, 1)
    assert ready.line == raw and b"\\u00e9" in raw
    assert hashed(ready) == hashed(row)


@pytest.mark.parametrize(
    "other",
    [
        {"id": "a", "prompt": "hi!"},
        {"id": "a", "prompt": "hi", "temperature": 0.5},
        {"id": "a", "prompt": "hi", "max_output_tokens": 7},
        {"id": "a", "prompt": "hi", "model": "gpt-4o"},
    ],
)
def test_any_difference_in_the_body_hashes_differently(other: dict[str, Any]) -> None:
    """Another input, parameter or model is another request."""
    rows = maker(RESPONSES)
    [base] = rows.requests([(1, {"id": "a", "prompt": "hi"}, b"")], fail)
    changed = rows(other, b"", 1)
    assert isinstance(changed, BatchRequest)
    assert hashed(changed) != hashed(base)


def test_another_provider_or_endpoint_hashes_differently() -> None:
    """The same body sent to another provider, or to another endpoint, is another request."""
    [chat] = maker(CHAT).requests([(1, {"id": "a", "prompt": "hi"}, b"")], fail)
    [responses] = maker(RESPONSES).requests([(1, {"id": "a", "prompt": "hi"}, b"")], fail)
    elsewhere = BatchRequest(1, "a", chat.model, chat.line, None, 1, None, provider="groq")
    assert len({hashed(chat), hashed(responses), body_hash(elsewhere)}) == 3
