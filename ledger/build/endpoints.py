"""The Batch API endpoints a run can build for: their names on `--endpoint`, and their URLs."""

from __future__ import annotations

from ledger.errors import InputError

#: Endpoint names accepted by `--endpoint`, and the URL each stands for.
ENDPOINTS: dict[str, str] = {
    "responses": "/v1/responses",
    "chat": "/v1/chat/completions",
    "embeddings": "/v1/embeddings",
}
RESPONSES, CHAT, EMBEDDINGS = ENDPOINTS["responses"], ENDPOINTS["chat"], ENDPOINTS["embeddings"]


def resolve_endpoint(value: str) -> str:
    """The endpoint URL for a name (`chat`) or URL (`/v1/chat/completions`)."""
    if value in ENDPOINTS:
        return ENDPOINTS[value]
    if value in ENDPOINTS.values():
        return value
    names = ", ".join(ENDPOINTS)
    raise InputError(f'--endpoint: unknown endpoint "{value}" (choose {names})')
