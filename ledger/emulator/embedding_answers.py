"""Embeddings answers: one deterministic unit vector per input."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from ledger.emulator.echo import TokenUsage, is_int, request_inputs


def embeddings_body(body: dict[str, Any], dims: int, usage: TokenUsage) -> dict[str, Any]:
    """The `list` of embeddings: `dimensions` floats each if the body asks, else `dims`."""
    wanted = body.get("dimensions")
    size = wanted if isinstance(wanted, int) and is_int(wanted) and 0 < wanted <= 4096 else dims
    # `encoding_format: "base64"` answers each vector as base64 of little-endian float32s
    # (the openai SDK asks for it by default and decodes it back to floats).
    as_base64 = body.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _base64(vector) if as_base64 else vector,
        }
        for i, vector in enumerate(embedding_vector(t, size) for t in request_inputs(body))
    ]
    tokens = usage.input_tokens
    return {
        "object": "list",
        "data": data,
        "model": str(body.get("model")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embedding_vector(text: str, size: int) -> list[float]:
    """A unit vector of `size` floats derived from `text` alone."""
    values: list[float] = []
    counter = 0
    while len(values) < size:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend(v / 2**31 for v in struct.unpack(">8i", digest))
        counter += 1
    values = values[:size]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
