"""Files that survive a crash: written under a temporary name, fsynced, renamed, and the rename
made durable by syncing the directory. Shards, downloads, results and manifests all go this way,
so a reader finds either the whole old file or the whole new one, never half of either."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def fsync_directory(path: Path) -> None:
    """Make the renames inside `path` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish(written: Path, final: Path) -> None:
    """Rename a fully written, fsynced file into place, durably."""
    os.replace(written, final)
    fsync_directory(final.parent)


def write_durably(path: Path, data: bytes) -> None:
    """Write a file under a temporary name, fsync it, and rename it into place."""
    # A name of its own: two processes writing one path never write into each other's file.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        publish(partial, path)
    finally:
        partial.unlink(missing_ok=True)
