"""What the APIs refuse per model, and the dated name they answer with: the emulator's own small
facts table (it imports nothing from ledger, so it carries its own; a test checks that ledger's
model table agrees, so the build never sends what the emulator refuses).

The rules, each with the words the real API answers with:

- OpenAI reasoning models (gpt-5 family, o-series) take `temperature` / `top_p` only at their
  default (1): 400 `unsupported_value` "Unsupported value: 'temperature' does not support 0.2
  with this model. Only the default (1) value is supported." gpt-5.1 and later accept them when
  the reasoning effort is "none" (gpt-5.1 and gpt-5.2 default to it).
  Sources: platform.openai.com/docs/guides/reasoning#limitations; github.com/vercel/ai/issues/10932;
  github.com/johny-b/llmcomp/issues/69.
- JSON mode (`response_format` / `text.format` of type `json_object`) needs the word "json"
  somewhere in the messages: 400 "'messages' must contain the word 'json' in some form, to use
  'response_format' of type 'json_object'." (platform.openai.com/docs/guides/structured-outputs,
  "JSON mode").
- A prompt longer than the context window: 400 `context_length_exceeded` (OpenAI), Anthropic's
  "prompt is too long: N tokens > M maximum". The emulator counts tokens its own way
  (`echo.count_tokens`).
- Claude Opus 4.7 and later, Sonnet 5 and later: "`temperature` is deprecated for this model."
  (platform.claude.com/docs/en/about-claude/models/whats-new-claude-4-7; observed for Opus 4.8 in
  github.com/The-PR-Agent/pr-agent/issues/2456). `top_p` and `top_k` likewise.
- Claude Sonnet 4.5+, Haiku 4.5, Opus 4.1-4.6: "`temperature` and `top_p` cannot both be
  specified for this model. Please use only one." (github.com/BerriAI/litellm/issues/15097,
  github.com/SalesforceAIResearch/MCP-Universe/issues/49).

A model the table does not know is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.emulator.echo import as_list, content_text, count_tokens, input_tokens
from ledger.emulator.errors import ApiError, bad_request

#: Sampling rules, named as ledger's model table names them.
ANY, DEFAULT_ONLY, EFFORT_NONE, ONE_OF, NONE = (
    "any",
    "default-only",
    "effort-none",
    "one-of",
    "none",
)

#: A dated snapshot or alias suffix: gpt-4o-2024-08-06, gpt-3.5-turbo-0125, claude-...-20251001.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)$")


@dataclass(frozen=True)
class ModelFacts:
    """What the emulator checks for one model."""

    provider: str
    context_window: int
    sampling: str
    #: The reasoning effort a request without one gets ("none" lets temperature through).
    default_effort: str | None = None
    #: The snapshot the API names in its answers (OpenAI answers `gpt-4o-mini` requests with
    #: `gpt-4o-mini-2024-07-18`; platform.openai.com/docs/models, each model's "Snapshots").
    dated: str | None = None


def _rows() -> dict[str, ModelFacts]:
    o, a = "openai", "anthropic"
    rows = {
        # OpenAI reasoning models: defaults only (docs/guides/reasoning#limitations).
        "gpt-5": ModelFacts(o, 400_000, DEFAULT_ONLY, dated="gpt-5-2025-08-07"),
        "gpt-5-mini": ModelFacts(o, 400_000, DEFAULT_ONLY, dated="gpt-5-mini-2025-08-07"),
        "gpt-5-nano": ModelFacts(o, 400_000, DEFAULT_ONLY, dated="gpt-5-nano-2025-08-07"),
        "gpt-5-pro": ModelFacts(o, 400_000, DEFAULT_ONLY),
        "gpt-5.2-pro": ModelFacts(o, 400_000, DEFAULT_ONLY),
        "gpt-5.4-pro": ModelFacts(o, 1_050_000, DEFAULT_ONLY),
        "gpt-5.5-pro": ModelFacts(o, 1_050_000, DEFAULT_ONLY),
        "gpt-5.1": ModelFacts(o, 400_000, EFFORT_NONE, default_effort="none"),
        "gpt-5.2": ModelFacts(o, 400_000, EFFORT_NONE, default_effort="none"),
        "gpt-5.4": ModelFacts(o, 1_050_000, EFFORT_NONE),
        "gpt-5.4-mini": ModelFacts(o, 400_000, EFFORT_NONE),
        "gpt-5.4-nano": ModelFacts(o, 400_000, EFFORT_NONE),
        "gpt-5.5": ModelFacts(o, 1_050_000, EFFORT_NONE),
        "o1": ModelFacts(o, 200_000, DEFAULT_ONLY, dated="o1-2024-12-17"),
        "o1-pro": ModelFacts(o, 200_000, DEFAULT_ONLY),
        "o3": ModelFacts(o, 200_000, DEFAULT_ONLY, dated="o3-2025-04-16"),
        "o3-pro": ModelFacts(o, 200_000, DEFAULT_ONLY),
        "o3-mini": ModelFacts(o, 200_000, DEFAULT_ONLY, dated="o3-mini-2025-01-31"),
        "o4-mini": ModelFacts(o, 200_000, DEFAULT_ONLY, dated="o4-mini-2025-04-16"),
        # OpenAI non-reasoning models: any sampling.
        "gpt-4o": ModelFacts(o, 128_000, ANY, dated="gpt-4o-2024-08-06"),
        "gpt-4o-mini": ModelFacts(o, 128_000, ANY, dated="gpt-4o-mini-2024-07-18"),
        "gpt-4.1": ModelFacts(o, 1_047_576, ANY, dated="gpt-4.1-2025-04-14"),
        "gpt-4.1-mini": ModelFacts(o, 1_047_576, ANY, dated="gpt-4.1-mini-2025-04-14"),
        "gpt-4.1-nano": ModelFacts(o, 1_047_576, ANY, dated="gpt-4.1-nano-2025-04-14"),
        "gpt-3.5-turbo": ModelFacts(o, 16_385, ANY, dated="gpt-3.5-turbo-0125"),
        # Claude: sampling deprecated (Opus 4.7+, Sonnet 5+).
        "claude-opus-4-7": ModelFacts(a, 1_000_000, NONE),
        "claude-opus-4-8": ModelFacts(a, 1_000_000, NONE),
        "claude-opus-5": ModelFacts(a, 1_000_000, NONE),
        "claude-sonnet-5": ModelFacts(a, 1_000_000, NONE),
        "claude-opus-5-5": ModelFacts(a, 1_000_000, NONE),
        "claude-sonnet-5-5": ModelFacts(a, 1_000_000, NONE),
        # Claude: temperature or top_p, not both.
        "claude-opus-4-1": ModelFacts(a, 200_000, ONE_OF),
        "claude-opus-4-5": ModelFacts(a, 200_000, ONE_OF),
        "claude-opus-4-6": ModelFacts(a, 1_000_000, ONE_OF),
        "claude-sonnet-4-5": ModelFacts(a, 200_000, ONE_OF),
        "claude-sonnet-4-6": ModelFacts(a, 1_000_000, ONE_OF),
        "claude-haiku-4-5": ModelFacts(a, 200_000, ONE_OF),
        # Claude: older models take any sampling.
        "claude-opus-4": ModelFacts(a, 200_000, ANY),
        "claude-sonnet-4": ModelFacts(a, 200_000, ANY),
        "claude-3-7-sonnet": ModelFacts(a, 200_000, ANY),
        "claude-3-5-haiku": ModelFacts(a, 200_000, ANY),
        "claude-3-haiku": ModelFacts(a, 200_000, ANY),
    }
    return rows


#: The facts table, by model name without its snapshot suffix.
MODELS: dict[str, ModelFacts] = _rows()


def facts(model: str) -> ModelFacts | None:
    """The facts for a model name, or for the model a dated snapshot of it names."""
    found = MODELS.get(model)
    if found is None:
        found = MODELS.get(_SNAPSHOT.sub("", model))
    return found


def dated_model(model: str) -> str:
    """The model name an OpenAI answer carries: the dated snapshot an alias points at."""
    found = MODELS.get(model)
    return found.dated if found is not None and found.dated else model


# -- OpenAI -------------------------------------------------------------------------------------


def openai_rejection(endpoint: str, body: dict[str, Any]) -> ApiError | None:
    """The 400 the OpenAI API answers this request body with, or None when it would run it."""
    if endpoint in ("/v1/embeddings", "/v1/moderations"):
        return None
    model = body.get("model")
    info = facts(model) if isinstance(model, str) else None
    if info is not None and info.sampling in (DEFAULT_ONLY, EFFORT_NONE):
        effort = _effort(body) or info.default_effort
        if not (info.sampling == EFFORT_NONE and effort == "none"):
            for name in ("temperature", "top_p"):
                value = body.get(name)
                if value is not None and value != 1:
                    return bad_request(
                        f"Unsupported value: '{name}' does not support {value!r} with this "
                        "model. Only the default (1) value is supported.",
                        param=name,
                        code="unsupported_value",
                    )
    problem = _json_mode_problem(endpoint, body)
    if problem is not None:
        return problem
    if info is not None:
        tokens = input_tokens(endpoint, body)
        if tokens > info.context_window:
            return _context_error(endpoint, info.context_window, tokens)
    return None


def _effort(body: dict[str, Any]) -> str | None:
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")
    if effort is None and isinstance(reasoning, dict):
        effort = reasoning.get("effort")
    return effort if isinstance(effort, str) else None


def _json_mode_problem(endpoint: str, body: dict[str, Any]) -> ApiError | None:
    if endpoint == "/v1/chat/completions":
        fmt, field, where = body.get("response_format"), "response_format", "messages"
        texts = _texts(body.get("messages"))
    elif endpoint == "/v1/responses":
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        field, where = "text.format", "input"
        instructions = body.get("instructions")
        texts = [*_texts(body.get("input")), instructions if isinstance(instructions, str) else ""]
    else:
        return None
    if not (isinstance(fmt, dict) and fmt.get("type") == "json_object"):
        return None
    if any("json" in text.lower() for text in texts):
        return None
    return bad_request(
        f"'{where}' must contain the word 'json' in some form, to use '{field}' of type "
        "'json_object'.",
        param=where,
    )


def _texts(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    return [content_text(m.get("content")) for m in as_list(messages) if isinstance(m, dict)]


def _context_error(endpoint: str, window: int, tokens: int) -> ApiError:
    if endpoint == "/v1/responses":
        message = (
            f"Your input exceeds the context window of this model ({window} tokens; the input "
            f"has {tokens}). Please adjust your input and try again."
        )
        return bad_request(message, param="input", code="context_length_exceeded")
    where = "prompt" if endpoint == "/v1/completions" else "messages"
    message = (
        f"This model's maximum context length is {window} tokens. However, your {where} "
        f"resulted in {tokens} tokens. Please reduce the length of the {where}."
    )
    return bad_request(message, param=where, code="context_length_exceeded")


# -- Anthropic ----------------------------------------------------------------------------------


def anthropic_problem(params: dict[str, Any]) -> str | None:
    """The `invalid_request_error` message the Messages API answers these params with, if any."""
    model = params.get("model")
    info = facts(model) if isinstance(model, str) else None
    if info is None:
        return None
    given = [n for n in ("temperature", "top_p", "top_k") if params.get(n) is not None]
    if info.sampling == NONE and given:
        return f"`{given[0]}` is deprecated for this model."
    if info.sampling == ONE_OF and "temperature" in given and "top_p" in given:
        return (
            "`temperature` and `top_p` cannot both be specified for this model. "
            "Please use only one."
        )
    tokens = anthropic_input_tokens(params)
    if tokens > info.context_window:
        return f"prompt is too long: {tokens} tokens > {info.context_window} maximum"
    return None


def anthropic_input_tokens(params: dict[str, Any]) -> int:
    """The prompt tokens of Messages params as the emulator counts them (3 per message, its text,
    the system, 3 to prime), also what `/v1/messages/count_tokens` answers."""
    system = params.get("system")
    tokens = 3 + count_tokens(_block_text(system)) if system else 3
    messages = [m for m in as_list(params.get("messages")) if isinstance(m, dict)]
    return tokens + sum(3 + count_tokens(_block_text(m.get("content"))) for m in messages)


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(
        block["text"]
        for block in _iter(content)
        if isinstance(block, dict) and isinstance(block.get("text"), str)
    )


def _iter(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else ()
