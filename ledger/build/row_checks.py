"""One request as it goes into a shard (`BatchRequest`), and the checks of a row's fields, each
failure a `RowProblem` naming the field (the bodies they pass into are `ledger.build.bodies`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson

from ledger.errors import InputError

#: What the Batch API accepts as a custom_id here (the provider also needs uniqueness per file).
CUSTOM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CUSTOM_ID_MAX = 64

#: Limits of the API: metadata pairs and sizes, inputs in one embeddings request.
METADATA_MAX_PAIRS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 16, 64, 512
EMBEDDING_INPUTS_PER_REQUEST = 2048


class RowProblem(InputError):
    """One bad input row: which field (if any) and what is wrong with it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def describe(self, source: str, line_number: int) -> str:
        """`input.jsonl:17: field "custom_id": duplicate of line 3`."""
        where = f'field "{self.field}": ' if self.field else ""
        return f"{source}:{line_number}: {where}{self.message}"


@dataclass(slots=True)
class BatchRequest:
    """One request as it goes into a shard file."""

    line_number: int
    custom_id: str
    model: str
    #: The Batch API input line, without its newline.
    line: bytes
    #: The body as built; None when only the line was made (see `parsed_body`).
    body: dict[str, Any] | None
    #: What the request counts toward the batch's input cap (embeddings inputs; else 1).
    inputs: int
    #: The request's own bound on output tokens, if it has one.
    max_output_tokens: int | None
    est_tokens: int | None = None
    #: The batch provider it goes to (a run may fan out to several; `ledger.build.targets`).
    provider: str = ""
    #: True when the body is a simple row's text with only the parameters every row shares
    #: (no per-row cap, temperature or metadata, no output format): the model checks of such
    #: bodies depend on the model alone, so a build checks one per model.
    shared: bool = False
    #: The prompt of a prompt row with the shared parameters (its body is its model's
    #: `RowBuilder.prompt_body` of this text): token counting adds its tokens to those of
    #: that body without it, counted once per model.
    prompt: str | None = None
    #: A ready line's url and body in the canonical form a simple row's line ends with
    #: (`ledger.build.body_hash`); None: the line itself has that form.
    canonical: bytes | None = None
    #: Its reuse hash (`ledger.build.body_hash`), taken when the spool records it.
    body_hash: bytes = b""

    def parsed_body(self) -> dict[str, Any]:
        """The body: as built, or read back from the line (once) when only the line was made."""
        body = self.body
        if body is None:
            body = self.body = orjson.loads(self.line)["body"]
        return body


#: A request's (provider, model), and other fields, read by `map` over a chunk (no loop in Python).
PROVIDER_MODEL = attrgetter("provider", "model")
SHARED = attrgetter("shared")
EST_TOKENS = attrgetter("est_tokens")


def one_target(requests: Sequence[BatchRequest]) -> tuple[str, str] | None:
    """The (provider, model) of every request, when they all have the same one."""
    targets = set(map(PROVIDER_MODEL, requests))
    return targets.pop() if len(targets) == 1 else None


_fullmatch = CUSTOM_ID.fullmatch


def plain_prompt(row: Any, line_number: int) -> tuple[str, str] | None:
    """A prompt row's text and custom_id when it is the plainest kind: a dict of a non-blank
    `prompt` and a valid id (`custom_id`, else `id`, else generated from its line) with none of
    the fields a row may set per request (`messages`, `input`, `max_output_tokens`,
    `temperature`, `metadata`; its `model` is the caller's to read). Such a row's line is made
    from its target's template (`ledger.build.targets`, `ledger.build.prompt_columns`); None:
    it is built and checked field by field."""
    if type(row) is not dict:
        return None
    get = row.get
    text = get("prompt")
    custom_id = get("custom_id")
    if custom_id is None or custom_id == "":
        custom_id = get("id")
        if custom_id is None or custom_id == "":
            custom_id = generated_custom_id(line_number)
    if (
        type(text) is str
        and text
        and not text.isspace()
        and type(custom_id) is str
        and _fullmatch(custom_id)
        and get("messages") is None
        and get("input") is None
        and get("max_output_tokens") is None
        and get("temperature") is None
        and get("metadata") is None
    ):
        return text, custom_id
    return None


def generated_custom_id(line_number: int) -> str:
    """The custom_id of a row without one: `row-000017` for line 17."""
    return f"row-{line_number:06d}"


def check_custom_id(value: Any, field: str = "custom_id") -> str:
    """The custom_id as a string, or a problem if it is not one the Batch API takes."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RowProblem("must be a string", field)
    if not CUSTOM_ID.fullmatch(value):
        if len(value) > CUSTOM_ID_MAX:
            raise RowProblem(f"{len(value)} characters, more than {CUSTOM_ID_MAX}", field)
        if not value:
            raise RowProblem("empty", field)
        bad = next(c for c in value if not CUSTOM_ID.fullmatch(c))
        raise RowProblem(f"{bad!r} is not allowed (only A-Z a-z 0-9 _ . : -)", field)
    return value


def check_text(value: Any, field: str) -> None:
    """A non-blank string, or a problem with `field`."""
    if type(value) is not str:
        raise RowProblem("must be a string", field)
    if not value or value.isspace():
        raise RowProblem("empty", field)


#: Message roles each endpoint takes, and the fields of a responses input message.
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
RESPONSES_ROLES = frozenset({"system", "developer", "user", "assistant"})
RESPONSES_MESSAGE_FIELDS = frozenset({"role", "content", "type"})


def check_messages(value: Any, chat: bool) -> None:
    """A non-empty list of messages with roles the endpoint takes."""
    if not isinstance(value, list) or not value:
        raise RowProblem("must be a non-empty list of {role, content} objects", "messages")
    roles = CHAT_ROLES if chat else RESPONSES_ROLES
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RowProblem("must be an object with role and content", where)
        role = message.get("role")
        if not isinstance(role, str):
            raise RowProblem("missing role", where)
        if role not in roles:
            raise RowProblem(f"role {role!r} is not one of {', '.join(sorted(roles))}", where)
        if not isinstance(message.get("content"), str | list):
            raise RowProblem("missing content (a string or a list of parts)", where)
        if not chat:
            for key in message:
                if key not in RESPONSES_MESSAGE_FIELDS:
                    raise RowProblem(
                        "the responses endpoint takes role and content (use --endpoint chat)",
                        f"{where}.{key}",
                    )


def check_responses_input(value: Any) -> None:
    """A responses `input`: a non-blank string or a non-empty list of items."""
    if isinstance(value, str):
        check_text(value, "input")
    elif not isinstance(value, list) or not value:
        raise RowProblem("must be a string or a non-empty list of input items", "input")


def optional_int(value: Any, field: str, default: int | None) -> int | None:
    """A whole number of at least 1, or `default` when not given."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RowProblem("must be a whole number of at least 1", field)
    return value


def optional_temperature(value: Any, default: float | None) -> float | None:
    """A number from 0 to 2, or `default` when not given."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise RowProblem("must be a number between 0 and 2", "temperature")
    return value


def check_metadata(value: Any) -> dict[str, str]:
    """At most 16 pairs of short strings."""
    if not isinstance(value, dict):
        raise RowProblem("must be an object of strings", "metadata")
    if len(value) > METADATA_MAX_PAIRS:
        raise RowProblem(f"{len(value)} pairs, more than {METADATA_MAX_PAIRS}", "metadata")
    for key, item in value.items():
        if len(key) > METADATA_KEY_MAX:
            raise RowProblem(f"key {key[:20]!r}... longer than {METADATA_KEY_MAX}", "metadata")
        if not isinstance(item, str) or len(item) > METADATA_VALUE_MAX:
            raise RowProblem(
                f"value of {key!r} must be a string of at most {METADATA_VALUE_MAX} characters",
                "metadata",
            )
    return value
