"""Gemini input tokens, counted by Google: `client.models.count_tokens` (`POST
/v1beta/models/{model}:countTokens`, free). Gemini's tokenizer is not available offline, so this
is the only exact count; without it ledger approximates with o200k_base and says so.

The Developer API's `count_tokens` takes `contents` only (google-genai 3.6.1
`_CountTokensConfig_to_mldev` refuses `system_instruction` outside Vertex AI), so system text is
counted as a leading content turn: the same text, a few tokens of framing apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from adapters.base import scrub
from adapters.gemini.requests import translate_body
from ledger.errors import TransientError

#: Batch Mode and countTokens both live in v1beta.
API_VERSION = "v1beta"


class GeminiTokenCounter:
    """Counts a chat-completions body's input tokens as Gemini counts its contents."""

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 30.0) -> None:
        self._api_key = api_key
        options = types.HttpOptions(
            base_url=base_url or None,
            api_version=API_VERSION,
            timeout=int(timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=2),
        )
        self._client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    def count(self, body: Mapping[str, Any]) -> int:
        """The input tokens of one chat body; TransientError when Gemini cannot be asked."""
        request = translate_body(dict(body))
        contents = list(request["contents"])
        system = request.get("systemInstruction")
        if system:
            contents.insert(0, {"role": "user", "parts": system["parts"]})
        try:
            counted = self._client.models.count_tokens(
                model=str(body.get("model")), contents=contents
            )
        except (genai_errors.APIError, httpx2.HTTPError, OSError) as error:
            message = scrub(str(error), self._api_key)
            raise TransientError(f"Gemini's token counting failed: {message}") from None
        return int(counted.total_tokens or 0)
