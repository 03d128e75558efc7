"""Moderations answers: every input scored, none flagged."""

from __future__ import annotations

from typing import Any

from ledger.emulator.echo import digest_hex, request_inputs

_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def moderations_body(body: dict[str, Any], key: str) -> dict[str, Any]:
    """The moderation of each input: every category false, every score 0."""
    results = [
        {
            "flagged": False,
            "categories": dict.fromkeys(_MODERATION_CATEGORIES, False),
            "category_scores": dict.fromkeys(_MODERATION_CATEGORIES, 0.0),
        }
        for _ in request_inputs(body)
    ]
    return {
        "id": f"modr-{digest_hex(key, 29)}",
        "model": str(body.get("model")),
        "results": results,
    }
