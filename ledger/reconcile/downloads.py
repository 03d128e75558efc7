"""Turning a downloaded result file into a verified local JSONL file, ZIP archives included.

Some OpenAI-compatible providers deliver results as a ZIP archive of several JSONL members. An
archive is untrusted input: member names that are absolute or climb out with `..` are refused
(zip slip), and the total uncompressed size and the compression ratio are capped (zip bomb),
counting the bytes actually inflated rather than trusting the sizes the archive declares.
"""

from __future__ import annotations

import itertools
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from ledger.core.durable import publish
from ledger.errors import ProviderError

ZIP_MAGIC = b"PK\x03\x04"
#: Total uncompressed bytes an archive may inflate to (the Batch API's own output limit is far
#: below this).
MAX_UNCOMPRESSED_BYTES = 4 << 30
#: Largest ratio of uncompressed to compressed size accepted for a member.
MAX_COMPRESSION_RATIO = 200
#: Longest result line read, newline included. A chat answer is at most a few MB (128k output
#: tokens is about 0.5 MB); 64 MiB leaves room for large embedding lines, and bounds the memory
#: a file (or ZIP member) with no newline can take: lines are read at most this long.
MAX_LINE_BYTES = 64 << 20


class CorruptDownload(ProviderError):
    """The downloaded bytes are not a whole result file (cut off, or not JSONL)."""


class UnsafeArchive(ProviderError):
    """A ZIP archive that tries to escape its directory or inflate beyond the caps."""


class LineTooLong(UnsafeArchive):
    """A result line longer than the cap: refused for good, like an unsafe archive (the same
    file downloaded again would be refused again)."""


def finish_download(
    raw: Path,
    final: Path,
    *,
    max_uncompressed: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: int = MAX_COMPRESSION_RATIO,
    max_line: int = MAX_LINE_BYTES,
) -> int:
    """Verify `raw` (plain JSONL, or a ZIP of JSONL members), write it to `final` atomically.

    Every line must parse as a JSON object with a `custom_id`. Returns the number of result
    lines. `raw` is removed.
    """
    with raw.open("rb") as probe:
        is_zip = probe.read(4) == ZIP_MAGIC
    part = final.with_name(final.name + ".part")
    try:
        with part.open("wb") as out:
            if is_zip:
                zipped = _zip_lines(raw, max_uncompressed, max_ratio, max_line)
                lines = _copy_lines(zipped, out)
            else:
                with raw.open("rb") as source:
                    lines = _copy_lines(_bounded_lines(source, max_line, "the file"), out)
            out.flush()
            os.fsync(out.fileno())
        publish(part, final)
    finally:
        part.unlink(missing_ok=True)
        raw.unlink(missing_ok=True)
    return lines


def _bounded_lines(stream: IO[bytes], max_line: int, where: str) -> Iterator[bytes]:
    """The lines of `stream`, each read at most `max_line` bytes long: a longer one is refused
    before more of it is read (a file with no newline cannot fill memory)."""
    for number in itertools.count(1):
        line = stream.readline(max_line + 1)
        if not line:
            return
        if len(line) > max_line:
            raise LineTooLong(f"line {number} of {where} is longer than {max_line} bytes")
        yield line


def _copy_lines(lines: Iterator[bytes], out: IO[bytes]) -> int:
    count = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise CorruptDownload(f"line {number} is not JSON (download cut off?)") from None
        if not isinstance(record, dict) or "custom_id" not in record:
            raise CorruptDownload(f"line {number} is not a result line (no custom_id)")
        out.write(line if line.endswith(b"\n") else line + b"\n")
        count += 1
    return count


def _zip_lines(path: Path, max_uncompressed: int, max_ratio: int, max_line: int) -> Iterator[bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise CorruptDownload(f"not a readable ZIP archive: {error}") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        for member in members:
            _check_member_name(member.filename)
        inflated = 0
        for member in members:
            # Declared sizes can lie; the caps below are enforced on the bytes really read.
            budget = max(member.compress_size, 1) * max_ratio
            member_bytes = 0
            with archive.open(member) as stream:
                # Each read stops at the line cap or where a cap would be passed, so a member
                # with no newline is refused before it is inflated whole.
                while True:
                    limit = min(max_line, budget - member_bytes, max_uncompressed - inflated)
                    line = stream.readline(limit + 1)
                    if not line:
                        break
                    member_bytes += len(line)
                    inflated += len(line)
                    if inflated > max_uncompressed:
                        raise UnsafeArchive(
                            f"archive inflates past {max_uncompressed} bytes (zip bomb?)"
                        )
                    if member_bytes > budget:
                        raise UnsafeArchive(
                            f"member {member.filename!r} compresses more than {max_ratio}:1"
                            " (zip bomb?)"
                        )
                    if len(line) > max_line:
                        raise LineTooLong(
                            f"a line of member {member.filename!r} is longer than {max_line} bytes"
                        )
                    yield line


def _check_member_name(name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"archive member {name!r} escapes its directory (zip slip)")
