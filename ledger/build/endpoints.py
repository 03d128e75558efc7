"""The Batch API endpoints a run can build for: their names on `--endpoint`, and their URLs.

The names are vocabulary the chat clients share, so they are defined in `adapters.chat_types`
(adapters import nothing from ledger's build); the build finds them here.
"""

from __future__ import annotations

from adapters.chat_types import CHAT as CHAT
from adapters.chat_types import COMPLETIONS as COMPLETIONS
from adapters.chat_types import EMBEDDINGS as EMBEDDINGS
from adapters.chat_types import ENDPOINTS as ENDPOINTS
from adapters.chat_types import MODERATIONS as MODERATIONS
from adapters.chat_types import RESPONSES as RESPONSES
from adapters.chat_types import resolve_endpoint as resolve_endpoint
