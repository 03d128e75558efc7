"""Build-time refusal: what the provider would answer 400 to, found before anything is sent.

In a batch, a request the API refuses ends `errored` only when the whole batch ends, up to 24
hours later; `check_request` finds the same problems from the model table while the input is
read. Each rule, and the source behind each model's facts, is in `docs/models.md`.

A model the table does not know is not checked: one warning says so, never a refusal. A field
the table leaves unknown (None) refuses nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from ledger.usage.capabilities import ModelInfo, ModelTable, default_table

#: The endpoints whose bodies are generated text (embeddings take no sampling parameters).
CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
MODERATIONS = "/v1/moderations"

#: The request fields that bound the output, in the order a body is read for them.
OUTPUT_CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


@dataclass(frozen=True)
class Refusal:
    """A parameter the provider would refuse for this model, and why; or, a warning."""

    model: str
    #: The body field at fault ("temperature", "max_output_tokens"...), None for the request.
    parameter: str | None
    reason: str
    #: True: worth saying, but the request is sent (an unknown model, a shut-down date).
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.parameter}: " if self.parameter else ""
        return f"model {self.model}: {where}{self.reason}"


def check_request(
    model: str,
    body: Mapping[str, Any],
    *,
    provider: str,
    endpoint: str,
    counted_tokens: int | None = None,
    table: ModelTable | None = None,
    today: dt.date | None = None,
) -> list[Refusal]:
    """What the provider would refuse in this request body, from the model table.

    `counted_tokens` is the prompt's token count, when it was counted: with the output budget
    (the body's max output tokens, else 0) it must fit the context window. `table` defaults to
    the packaged one with `$LEDGER_PRICES`; `today` to the current date (for shut-down models).
    """
    info = (table or default_table()).lookup(model, provider)
    if info is None:
        reason = "not in the model table: its parameters are not checked and it has no price"
        return [Refusal(model, None, reason, warning=True)]
    # The build calls this for every request: each rule is skipped as soon as it cannot apply.
    found: list[Refusal] = []
    if info.shutdown is not None or info.provider != provider:
        found.extend(_warnings(info, provider, today or _process_date()))
    if endpoint in (EMBEDDINGS, MODERATIONS):
        return found
    if info.sampling is not None and info.sampling != "any":
        found.extend(_sampling(info, model, body))
    cap = _output_cap(body)
    if cap is not None and info.max_output_tokens is not None and cap[1] > info.max_output_tokens:
        reason = f"{cap[1]:,} is over the model's maximum of {info.max_output_tokens:,} tokens"
        found.append(Refusal(model, cap[0], reason))
    if counted_tokens is not None and info.context_window is not None:
        budget = cap[1] if cap is not None else 0
        if counted_tokens + budget > info.context_window:
            reason = (
                f"{counted_tokens:,} prompt tokens + {budget:,} output tokens exceed the "
                f"{info.context_window:,}-token context window"
            )
            found.append(Refusal(model, "messages" if endpoint == CHAT else "input", reason))
    if provider != "anthropic" and not _FORMAT_FIELDS.isdisjoint(body):
        found.extend(_output_formats(info, model, body, endpoint))
    return found


def prompt_headroom(
    model: str,
    body: Mapping[str, Any],
    *,
    provider: str,
    endpoint: str,
    table: ModelTable | None = None,
) -> float:
    """The most prompt tokens `check_request` lets this body have before the context window
    refuses it (its output budget taken out); infinite when the window is not known.

    So a caller that checked one body without `counted_tokens` knows which counts would change
    the answer for another body of the same model and parameters."""
    info = (table or default_table()).lookup(model, provider)
    if info is None or info.context_window is None or endpoint in (EMBEDDINGS, MODERATIONS):
        return float("inf")
    cap = _output_cap(body)
    return info.context_window - (cap[1] if cap is not None else 0)


# date.today() costs more than all the rules together; a build does not need it to the second,
# and a date that is a day stale changes only a warning.
_process_date = cache(dt.date.today)

#: The body fields `_output_formats` reads: a body with none of them is not looked at.
_FORMAT_FIELDS = frozenset({"response_format", "text", "n", "logprobs", "top_logprobs"})


def _warnings(info: ModelInfo, provider: str, today: dt.date) -> Iterator[Refusal]:
    known = ("openai", "anthropic", "mistral")
    if info.provider in known and provider in known and info.provider != provider:
        reason = f"an {info.provider} model, sent to {provider}"
        yield Refusal(info.name, "model", reason, warning=True)
    if info.shutdown is not None and info.shutdown <= today:
        reason = f"the provider announced its shutdown for {info.shutdown.isoformat()}"
        yield Refusal(info.name, "model", reason, warning=True)


def _sampling(info: ModelInfo, model: str, body: Mapping[str, Any]) -> Iterator[Refusal]:
    given = {k: body[k] for k in ("temperature", "top_p", "top_k") if body.get(k) is not None}
    rule = info.sampling
    if rule == "none":
        for name in given:
            yield Refusal(model, name, "deprecated for this model: the API answers 400")
    elif rule == "one-of":
        if "temperature" in given and "top_p" in given:
            reason = "temperature and top_p cannot both be specified for this model: keep one"
            yield Refusal(model, "temperature, top_p", reason)
    elif rule in ("default-only", "effort-none"):
        effort = _reasoning_effort(body) or info.default_effort
        if rule == "effort-none" and effort == "none":
            return
        for name in ("temperature", "top_p"):
            if name in given and given[name] != 1:
                reason = f"{given[name]!r} is refused (400 unsupported_value): only the default (1)"
                if rule == "effort-none":
                    reason += ', unless reasoning effort is "none"'
                yield Refusal(model, name, reason)


def _reasoning_effort(body: Mapping[str, Any]) -> str | None:
    # Chat Completions: `reasoning_effort`; Responses: `reasoning.effort`.
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if effort is None and isinstance(reasoning, Mapping):
        effort = reasoning.get("effort")
    return effort if isinstance(effort, str) else None


def _output_cap(body: Mapping[str, Any]) -> tuple[str, int] | None:
    for name in OUTPUT_CAPS:
        value = body.get(name)
        if type(value) is int:
            return name, value
    return None


def _output_formats(
    info: ModelInfo, model: str, body: Mapping[str, Any], endpoint: str
) -> Iterator[Refusal]:
    """JSON mode, Structured Outputs, n and logprobs, on OpenAI's endpoints."""
    if endpoint == CHAT:
        field, fmt = "response_format", body.get("response_format")
    else:
        text = body.get("text")
        field, fmt = "text.format", text.get("format") if isinstance(text, Mapping) else None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "json_object":
        if info.json_mode is False:
            yield Refusal(model, field, "JSON mode is not supported by this model")
        elif not any("json" in text.lower() for text in _prompt_texts(body, endpoint)):
            reason = 'JSON mode needs the word "json" in the messages (the API answers 400)'
            yield Refusal(model, field, reason)
    if kind == "json_schema" and info.structured_outputs is False:
        yield Refusal(model, field, "Structured Outputs (json_schema) not supported by this model")
    n = body.get("n")
    if info.n is False and type(n) is int and n > 1:
        yield Refusal(model, "n", "this model returns one choice only")
    wants_logprobs = body.get("logprobs") is True or body.get("top_logprobs") is not None
    if info.logprobs is False and wants_logprobs:
        yield Refusal(model, "logprobs", "not supported by this model")


def _prompt_texts(body: Mapping[str, Any], endpoint: str) -> list[str]:
    """The text of the messages (chat), or of the input and instructions (responses)."""
    if endpoint == CHAT:
        return _message_texts(body.get("messages"))
    instructions = body.get("instructions")
    texts = _message_texts(body.get("input"))
    return [*texts, instructions] if isinstance(instructions, str) else texts


def _message_texts(messages: Any) -> list[str]:
    """The text of a chat `messages` list or a responses `input` (string or items)."""
    if isinstance(messages, str):
        return [messages]
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            )
    return texts
