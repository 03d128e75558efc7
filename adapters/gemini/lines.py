"""Gemini Batch Mode result lines, read into the neutral `Outcome` and `Answer`, and the check
that every key comes back exactly once.

Gemini writes one result file per batch, in any order, a line per request: `{"key",
"response": GenerateContentResponse}` or `{"key", "error": {"code", "message", "status"}}`. Users
have seen lines whose key names the wrong request (python-genai #1909), so `check_keys` rewrites
the downloaded file before it is normalized: a key on exactly one line keeps its line (as
`custom_id`); a key on two or more lines gets one `duplicate_key` error line instead (which of
them answers it cannot be told); a key naming no request is kept and quarantined by the
normalizer; a request no line names ends `missing`. Each is per request, none silently joined.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from adapters.results import (
    FAILED,
    INPUT_IS_LIST,
    SUCCEEDED,
    Answer,
    Outcome,
    UnreadableLine,
    as_count,
    as_text,
)

#: Gemini `finishReason` -> the finish reason the result schema uses (others lowercased).
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
#: The error code of a request whose key came back on more than one line.
DUPLICATE_KEY = "duplicate_key"


def parse_line(raw: bytes | str) -> Outcome:
    """One line of a checked result file; `UnreadableLine` when it names no request."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnreadableLine(f"not JSON: {error}") from None
    if not isinstance(line, dict):
        raise UnreadableLine("not a JSON object")
    key = line.get("custom_id", line.get("key"))
    if not isinstance(key, str):
        raise UnreadableLine("not an object with a string key")
    response = line.get("response")
    if isinstance(response, dict):
        # The schema's pricing reads a body's `usage`; Gemini names it `usageMetadata`.
        body = {**response, "usage": _usage_for_pricing(response.get("usageMetadata"))}
        response_id = response.get("responseId")
        return Outcome(
            key, SUCCEEDED, 200, response_id if isinstance(response_id, str) else None, body, None
        )
    error = line.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return Outcome(
            key,
            FAILED,
            code if type(code) is int and 400 <= code < 600 else None,
            None,
            None,
            {
                "code": as_text(error.get("status") or error.get("code")) or "error",
                "message": as_text(error.get("message")),
            },
        )
    return Outcome(
        key, FAILED, None, None, None, {"code": "no_result", "message": "the line has no response"}
    )


def read_body(body: dict[str, Any], flags: int = 0) -> Answer:
    """A GenerateContentResponse: the first candidate's text parts joined (thought parts left
    out); a prompt blocked before any candidate is a refusal. JSON asked for is parsed by the
    schema, not here. An EmbedContentResponse: its vector (a list of one when the request's
    input was a list, `INPUT_IS_LIST`)."""
    embedding = body.get("embedding")
    if isinstance(embedding, dict):  # an EmbedContentResponse (an embeddings batch)
        values = embedding.get("values")
        vector = [float(v) for v in values] if isinstance(values, list) else []
        return Answer(embedding=[vector] if flags & INPUT_IS_LIST else vector)
    candidates = body.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates else None
    usage = read_usage(body.get("usageMetadata"))
    model = body.get("modelVersion") if isinstance(body.get("modelVersion"), str) else None
    if not isinstance(first, dict):
        feedback = body.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        refusal = f"The prompt was blocked ({reason})." if reason else "No candidate returned."
        return Answer(None, refusal, None, "content_filter", usage, model=model)
    content = first.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts = [
        part["text"]
        for part in parts or ()
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    ]
    reason = first.get("finishReason")
    finish = FINISH_REASONS.get(reason, reason.lower()) if isinstance(reason, str) else None
    refusal = (
        "The answer was blocked (" + str(reason) + ")." if finish == "content_filter" else None
    )
    return Answer("".join(texts) if texts else None, refusal, None, finish, usage, model=model)


def read_usage(usage: Any) -> dict[str, int] | None:
    """`usageMetadata` in the schema's terms: thoughts are billed as output, so they count in
    `output_tokens` (as OpenAI's reasoning tokens do) and again as `reasoning_tokens`."""
    if not isinstance(usage, dict):
        return None
    thoughts = as_count(usage.get("thoughtsTokenCount"))
    return {
        "input_tokens": as_count(usage.get("promptTokenCount")),
        "output_tokens": as_count(usage.get("candidatesTokenCount")) + thoughts,
        "cached_tokens": as_count(usage.get("cachedContentTokenCount")),
        "reasoning_tokens": thoughts,
    }


def _usage_for_pricing(usage: Any) -> dict[str, Any] | None:
    counts = read_usage(usage)
    if counts is None:
        return None
    return {
        "input_tokens": counts["input_tokens"],
        "output_tokens": counts["output_tokens"],
        "input_tokens_details": {"cached_tokens": counts["cached_tokens"]},
    }


class GeminiLines:
    """`adapters.results.ResultReader` for checked Gemini Batch Mode result files."""

    # The module's functions themselves, not methods calling them: a call less per line.
    parse_line = staticmethod(parse_line)
    read_body = staticmethod(read_body)


#: The reader the registry hands out for `gemini`.
READER = GeminiLines()


def check_keys(raw: Path, destination: Path) -> tuple[int, int]:
    """Rewrite the downloaded result file `raw` into `destination` so that every key is on at
    most one line (see the module docstring); streams twice, holding only the key counts.
    Returns (lines written, keys that came back more than once)."""
    counts: Counter[str] = Counter(key for key, _ in _keyed_lines(raw) if key is not None)
    duplicated = {key for key, seen in counts.items() if seen > 1}
    written = 0
    with destination.open("wb") as out:
        for key, line in _keyed_lines(raw):
            if key is None:
                out.write(line + b"\n")  # unreadable: the normalizer quarantines it
            elif key in duplicated:
                if counts[key] > 0:
                    _write_duplicate(out, key, counts[key])
                    counts[key] = 0
                else:
                    continue
            else:
                record = orjson.loads(line)
                record["custom_id"] = record.pop("key")
                out.write(orjson.dumps(record) + b"\n")
            written += 1
    return written, len(duplicated)


def _write_duplicate(out: IO[bytes], key: str, lines: int) -> None:
    error = {
        "code": DUPLICATE_KEY,
        "message": f"Gemini returned {lines} result lines for this key; which one answers this "
        "request cannot be told (python-genai #1909), so none is used",
    }
    out.write(orjson.dumps({"custom_id": key, "error": error}) + b"\n")


def _keyed_lines(path: Path) -> Iterator[tuple[str | None, bytes]]:
    with path.open("rb") as file:
        for raw in file:
            line = raw.strip()
            if not line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                yield None, line
                continue
            key = record.get("key") if isinstance(record, dict) else None
            yield (key if isinstance(key, str) else None), line
