"""The provider lines that are no result, kept whole with the reason.

A line that names no input request (unreadable, or a custom_id the input does not have) is never
dropped: it goes to a quarantine file beside the results, with where it came from and why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import orjson


class Quarantine:
    """Lines that answer no input request, kept whole with the reason, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[bytes] | None = None

    def add(self, source: str, number: int, custom_id: str | None, reason: str, raw: bytes) -> None:
        """Keep line `number` of `source`, with why it is not a result."""
        if self._file is None:
            self._file = self.path.open("wb")
        entry = {
            "reason": reason,
            "custom_id": custom_id,
            "source": source,
            "source_line": number,
            "line": raw.rstrip(b"\r\n").decode("utf-8", errors="replace"),
        }
        self._file.write(orjson.dumps(entry) + b"\n")
        self.count += 1

    def close(self) -> None:
        """Make the kept lines durable (the caller publishes the file)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
