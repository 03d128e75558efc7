"""Artifacts in a folder: `<root>/ab/<sha256>`, the default for a SQLite ledger
(`<ledger dir>/artifacts`). A folder on a mount every machine shares works for many machines.

Each file is written under a temporary name in the root, fsynced and renamed into place (the
rename made durable by syncing the folder), so a crash leaves a whole artifact or none, and a
reader never sees half a file. Files are 0600 and folders 0700: shards hold every prompt.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from ledger.artifacts.base import (
    CHUNK_BYTES,
    ArtifactRef,
    Source,
    copy_hashing,
    copy_verified,
    fanout,
    file_blocks,
    is_sha256,
    reading,
    verified_stream,
)
from ledger.artifacts.errors import ArtifactUnreachable
from ledger.core.durable import fsync_directory, publish


def path_from_file_url(url: str) -> Path:
    """The folder a `file:///...` URL names (only local, absolute paths)."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path:
        raise ValueError(f"not a local file URL: {url}")
    return Path(unquote(parts.path))


class LocalFolderStore:
    """Artifacts as files under one folder."""

    kind = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def path_of(self, sha256: str) -> Path:
        """Where the artifact with this sha256 is (or would be) kept."""
        return self.root / fanout(sha256)

    def put(self, source: Source) -> ArtifactRef:
        with reading(source) as stream:
            partial = self._create_partial()
            try:
                sha256, size = self._write(stream, partial)
                self._place(partial, sha256)
            finally:
                partial.unlink(missing_ok=True)
        return ArtifactRef.under(self.url, sha256, size)

    @contextmanager
    def writing(self) -> Iterator[StoreWriter]:
        """A new artifact written straight into the store, hashed as it is written: the
        block writes its bytes with `write`, and once it ends they are fsynced and in place
        under `ref`. A file made only to be put (a job's results) is so written once, not
        written and then copied. An exception in the block leaves nothing behind."""
        partial = self._create_partial()
        try:
            with open(partial, "wb") as out:
                writer = StoreWriter(out, self._unwritable)
                try:
                    yield writer
                    sha256, size = writer.finish()
                finally:
                    writer.stop()
            self._place(partial, sha256)
            writer.ref = ArtifactRef.under(self.url, sha256, size)
        finally:
            partial.unlink(missing_ok=True)

    def open(self, ref: ArtifactRef) -> BinaryIO:
        path = self.path_of(ref.sha256)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by file_blocks when reading ends
        except FileNotFoundError:
            raise ArtifactUnreachable(f"{ref.label} is missing: no file {path}") from None
        except OSError as error:
            raise ArtifactUnreachable(f"{ref.label} cannot be opened: {error}") from error
        return verified_stream(ref, file_blocks(handle))

    def copy_to(self, ref: ArtifactRef, path: str | os.PathLike[str]) -> None:
        copy_verified(self.open(ref), path)

    def exists(self, ref: ArtifactRef) -> bool:
        return self.path_of(ref.sha256).is_file()

    def delete(self, ref: ArtifactRef) -> None:
        path = self.path_of(ref.sha256)
        if path.exists():
            path.unlink(missing_ok=True)
            fsync_directory(path.parent)

    def list(self) -> Iterator[ArtifactRef]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if len(folder.name) != 2 or not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if is_sha256(path.name) and path.name.startswith(folder.name):
                    yield ArtifactRef.under(self.url, path.name, path.stat().st_size)

    def _place(self, partial: Path, sha256: str) -> None:
        """Rename a written, fsynced partial into place under its sha256."""
        final = self.path_of(sha256)
        # Renaming over an existing copy is harmless (the same bytes) and repairs a damaged
        # one; it is also the one step two concurrent puts may both take.
        try:
            self._make_folder(final.parent)
            publish(partial, final)
        except OSError as error:
            raise self._unwritable(error) from error

    def _create_partial(self) -> Path:
        partial = self.root / f".incoming-{uuid.uuid4().hex}.partial"
        try:
            self._make_folder(self.root)
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as error:
            raise self._unwritable(error) from error
        return partial

    def _make_folder(self, folder: Path) -> None:
        if folder.is_dir():
            return
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fsync_directory(folder.parent)

    def _write(self, stream: BinaryIO, partial: Path) -> tuple[str, int]:
        """Copy `stream` into `partial` and fsync it. A failed write (a full disk, a read-only
        mount) is the store's ArtifactUnreachable; a failed read stays the source's own error."""
        with open(partial, "wb") as out:

            def write(block: bytes) -> None:
                try:
                    out.write(block)
                except OSError as error:
                    raise self._unwritable(error) from error

            sha256, size = copy_hashing(stream, write)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as error:
                raise self._unwritable(error) from error
        return sha256, size

    def _unwritable(self, error: OSError) -> ArtifactUnreachable:
        reason = error.strerror or str(error)
        return ArtifactUnreachable(f"the artifact store {self.url} cannot be written: {reason}")


class StoreWriter:
    """The writing end of `LocalFolderStore.writing`: bytes are gathered into blocks, and each
    block is hashed and written whole by a thread of its own, while the caller makes the next.

    Hashing and writing release the GIL, so they overlap the caller's Python work: a job's
    results (173 MB at 200 MB of output) are hashed and written in 0.15-0.2 s of a
    normalize's 2 s, which the thread takes off its critical path (bench/normalize.py)."""

    def __init__(self, out: BinaryIO, unwritable: Callable[[OSError], ArtifactUnreachable]):
        self._out = out
        self._unwritable = unwritable
        self._digest = hashlib.sha256()
        self._block = bytearray()
        self._size = 0
        # Few blocks in flight: the caller waits rather than holding a slow disk's backlog.
        self._blocks: queue.Queue[bytearray | None] = queue.Queue(maxsize=_BLOCKS_IN_FLIGHT)
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        #: The artifact's ref, set once the `writing` block has ended and it is in place.
        self.ref: ArtifactRef | None = None

    def write(self, data: bytes | bytearray) -> None:
        """Add `data` to the artifact."""
        self._block += data
        if len(self._block) >= CHUNK_BYTES:
            self._hand_over()

    def finish(self) -> tuple[str, int]:
        """Write what is left and fsync: the artifact's sha256 and size."""
        self._hand_over()
        self.stop()
        self._raise_failure()
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
        except OSError as error:
            raise self._unwritable(error) from error
        return self._digest.hexdigest(), self._size

    def stop(self) -> None:
        """Wait for the blocks handed over to be written (idempotent)."""
        if self._thread is not None:
            self._blocks.put(None)
            self._thread.join()
            self._thread = None

    def _hand_over(self) -> None:
        self._raise_failure()
        if not self._block:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_blocks, daemon=True)
            self._thread.start()
        self._blocks.put(self._block)
        self._block = bytearray()

    def _write_blocks(self) -> None:
        # Every block is taken off the queue, even after a failure, so the caller never waits
        # on a full queue: it raises the failure at its next write, or at the end.
        while (block := self._blocks.get()) is not None:
            if self._failure is not None:
                continue
            try:
                self._digest.update(block)
                self._out.write(block)
                self._size += len(block)
            except BaseException as error:  # raised again in the caller's thread
                self._failure = error

    def _raise_failure(self) -> None:
        failure = self._failure
        if isinstance(failure, OSError):
            raise self._unwritable(failure) from failure
        if failure is not None:
            raise failure


#: How many full blocks may wait for the writing thread (so at most this many, plus the one it
#: writes and the one being filled, are in memory).
_BLOCKS_IN_FLIGHT = 2
