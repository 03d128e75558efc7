"""Reading a provider's output and error files, and keeping the lines that are no result.

The files are JSON lines; some OpenAI-compatible providers deliver a ZIP archive of them instead,
which is read member by member, streaming. Lines that name no input request are never dropped:
they go whole to a quarantine file, with the reason.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import orjson

_ZIP_MAGIC = b"PK\x03\x04"


def provider_files(paths: Iterable[Path]) -> Iterator[tuple[str, IO[bytes]]]:
    """Each of these output/error files, open for reading, with a name for where lines came from.

    A file that is a ZIP archive (some OpenAI-compatible providers deliver one) gives each of its
    members in turn, streamed, named `path!member`.
    """
    for path in paths:
        with path.open("rb") as file:
            zipped = file.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
        if not zipped:
            with path.open("rb") as file:
                yield str(path), file
            continue
        with zipfile.ZipFile(path) as archive:
            for name in sorted(n for n in archive.namelist() if not n.endswith("/")):
                with archive.open(name) as member:
                    yield f"{path}!{name}", member


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
