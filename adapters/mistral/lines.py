"""Mistral batch lines: the shard's OpenAI lines as Mistral takes them, and its result lines.

Input: one `{"custom_id", "body"}` JSON object a line, no `method` or `url` (the endpoint is
named once, on the job) [sdk: `CreateBatchJobRequest.input_files` docstring, mistralai 3.7.0].
The shard is built as OpenAI lines; `upload_line` rewrites each one, a pure function of its
bytes, so an upload retried after a crash sends the same bytes. The body keeps its `model`
(a chat or embeddings request names one; the job names it again).

Output and error files hold OpenAI's line shape, `{id, custom_id, response: {status_code,
body}, error}` [facts: /work/shared/provider-facts.md], so they are read with OpenAI's reader.
"""

from __future__ import annotations

from typing import Any

import orjson

from adapters.openai.lines import READER as OPENAI_READER
from adapters.results import ResultReader

#: What one Mistral batch job may hold: 1,000,000 requests [facts]; one input file of at most
#: 512 MB [sdk: `Files.upload` docstring].
MAX_REQUESTS = 1_000_000
MAX_BYTES = 512 * 1024 * 1024

#: Mistral's output and error lines are OpenAI's.
READER: ResultReader = OPENAI_READER


def upload_line(line: bytes) -> bytes:
    """One shard line (OpenAI's `{custom_id, method, url, body}`) as Mistral takes it."""
    item = orjson.loads(line)
    return orjson.dumps({"custom_id": item["custom_id"], "body": item["body"]})


def model_of_line(line: bytes) -> str | None:
    """The `model` the body of one input line names (the job's model), or None."""
    try:
        item: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    body = item.get("body") if isinstance(item, dict) else None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None
