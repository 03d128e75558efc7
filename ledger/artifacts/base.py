"""The artifact-store interface: content-addressed files, verified on every read.

An artifact is a file's bytes, named by their sha256. `put` streams a file in and returns an
`ArtifactRef` (where it is, its sha256, its size); storing the same bytes again returns the same
ref and stores nothing new. Every read checks the bytes against the ref, so a damaged or
truncated copy raises `ArtifactCorrupt` and is never passed on as if it were whole.

A ref serializes to one string for a database column, e.g.
`db:sha256:<hex>#size=123`, `file:///srv/ledger/artifacts/ab/<hex>#size=123` or
`s3://bucket/prefix/ab/<hex>#size=123`: the part before `#` says which store holds it, so any
machine with the same settings can read it (`ledger.artifacts.resolve`).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Protocol

from ledger.artifacts.errors import ArtifactCorrupt, ArtifactUnreachable
from ledger.core.durable import publish

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: Bytes read, hashed and written at a time; also the size of one database chunk.
CHUNK_BYTES = 1 << 20

#: The buffer of a stream `open` returns.
READ_BUFFER_BYTES = 64 << 10

#: What `put` accepts: a path, or a binary stream read to its end (and not closed).
Source = BinaryIO | str | os.PathLike[str]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_DATABASE_PREFIX = "db:sha256:"
_SIZE_FRAGMENT = re.compile(r"size=([0-9]+)")


def is_sha256(text: str) -> bool:
    """True for a sha256 written as 64 lowercase hex digits."""
    return _SHA256_HEX.fullmatch(text) is not None


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is and what its bytes must be."""

    #: A URL naming the artifact: `db:sha256:<hex>`, `file:///.../ab/<hex>`, `s3://.../ab/<hex>`.
    location: str
    #: The sha256 of the bytes, 64 lowercase hex digits.
    sha256: str
    #: The number of bytes.
    size: int

    def __post_init__(self) -> None:
        expected_end = self.sha256 if self.kind == "database" else "/" + fanout(self.sha256)
        if not is_sha256(self.sha256) or not self.location.endswith(expected_end):
            raise ValueError(f"not an artifact location for sha256 {self.sha256}: {self.location}")
        if self.size < 0:
            raise ValueError(f"negative artifact size {self.size}")

    @property
    def kind(self) -> str:
        """The kind of store holding it: "database", "local" (a folder) or "fsspec"."""
        if self.location.startswith(_DATABASE_PREFIX):
            return "database"
        if self.location.startswith("file://"):
            return "local"
        return "fsspec"

    @property
    def label(self) -> str:
        """A short name for messages: `artifact 1f2e3d4c5b6a (123 bytes)`."""
        return f"artifact {self.sha256[:12]} ({self.size} bytes)"

    def __str__(self) -> str:
        return f"{self.location}#size={self.size}"

    @classmethod
    def parse(cls, text: str) -> ArtifactRef:
        """The ref a string from `str(ref)` stands for; ArtifactUnreachable when it is not one."""
        location, _, fragment = text.rpartition("#")
        sha256 = location.rpartition("/")[2].removeprefix(_DATABASE_PREFIX)
        size = _SIZE_FRAGMENT.fullmatch(fragment)
        try:
            if size is None:
                raise ValueError(fragment)
            return cls(location=location, sha256=sha256, size=int(size[1]))
        except ValueError:
            raise ArtifactUnreachable(f"not an artifact reference: {text!r}") from None

    @classmethod
    def in_database(cls, sha256: str, size: int) -> ArtifactRef:
        """The ref of an artifact kept in the ledger database."""
        return cls(location=f"{_DATABASE_PREFIX}{sha256}", sha256=sha256, size=size)

    @classmethod
    def under(cls, root_url: str, sha256: str, size: int) -> ArtifactRef:
        """The ref of an artifact at `<root_url>/<first two hex digits>/<sha256>`."""
        return cls(location=f"{root_url.rstrip('/')}/{fanout(sha256)}", sha256=sha256, size=size)


def fanout(sha256: str) -> str:
    """The relative path of an artifact in a folder store: `ab/abcdef...`, so no one folder
    holds every file."""
    return f"{sha256[:2]}/{sha256}"


def root_of(ref: ArtifactRef) -> str:
    """The root URL of the folder store a `file://` or fsspec ref points into."""
    return ref.location.removesuffix("/" + fanout(ref.sha256))


class ArtifactStore(Protocol):
    """A place artifacts are put, read back verified, listed and deleted.

    A store finds an artifact by its sha256; the location in a ref says which store to ask.
    """

    @property
    def url(self) -> str:
        """The setting naming this store: "database", or the URL of its root folder."""
        ...

    def put(self, source: Source) -> ArtifactRef:
        """Stream `source` in, hashing as it goes; the same bytes always give the same ref."""
        ...

    def open(self, ref: ArtifactRef) -> BinaryIO:
        """A stream of the artifact's bytes that raises ArtifactCorrupt before handing out the
        last block unless every byte matched; ArtifactUnreachable when it is gone."""
        ...

    def copy_to(self, ref: ArtifactRef, path: str | os.PathLike[str]) -> None:
        """Write the artifact to `path` durably; `path` appears only once it is verified."""
        ...

    def exists(self, ref: ArtifactRef) -> bool:
        """True when the store holds an artifact with the ref's sha256."""
        ...

    def delete(self, ref: ArtifactRef) -> None:
        """Remove the artifact; nothing happens when it is already gone."""
        ...

    def list(self) -> Iterator[ArtifactRef]:
        """Every artifact the store holds (for `ledger gc`)."""
        ...


class VerifiedReader(io.RawIOBase):
    """The bytes of `blocks`, checked against `ref` as they pass.

    Bytes beyond the recorded size, a stream that ends short, or a sha256 that differs raise
    ArtifactCorrupt, and the check runs before the final block is handed out, so even a reader
    that stops at exactly `ref.size` bytes is told. Blocks handed out earlier are not yet proven:
    act on them only after reading to the end, or use `copy_to`. An OSError from the underlying
    store becomes ArtifactUnreachable.
    """

    def __init__(self, ref: ArtifactRef, blocks: Generator[bytes, None, None]) -> None:
        super().__init__()
        self._ref = ref
        self._blocks = blocks
        self._digest = hashlib.sha256()
        self._seen = 0
        self._pending = memoryview(b"")
        self._finished = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._pending and not self._finished:
            self._pending = memoryview(self._next_verified_block())
        target = memoryview(buffer).cast("B")
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        # An empty slice would still hold the whole block alive while the next one is fetched.
        self._pending = self._pending[count:] if count < len(self._pending) else memoryview(b"")
        return count

    def close(self) -> None:
        if not self.closed:
            self._blocks.close()
        super().close()

    def _next_verified_block(self) -> bytes:
        block = self._next_block()
        if block is None:
            self._finished = True
            if self._seen != self._ref.size:
                raise self._corrupt(f"it ends after {self._seen} bytes")
            if self._digest.hexdigest() != self._ref.sha256:
                raise self._corrupt("its sha256 differs")
            return b""
        self._seen += len(block)
        self._digest.update(block)
        if self._seen > self._ref.size:
            raise self._corrupt("it is longer than recorded")
        if self._seen == self._ref.size:
            if self._digest.hexdigest() != self._ref.sha256:
                raise self._corrupt("its sha256 differs")
            if self._next_block():
                raise self._corrupt("it is longer than recorded")
            self._finished = True
        return block

    def _next_block(self) -> bytes | None:
        try:
            block = next(self._blocks, None)
        except OSError as error:
            raise ArtifactUnreachable(f"{self._ref.label} could not be read: {error}") from error
        return bytes(block) if block is not None else None

    def _corrupt(self, reason: str) -> ArtifactCorrupt:
        return ArtifactCorrupt(
            f"{self._ref.label} is damaged: {reason} (recorded sha256 {self._ref.sha256})"
        )


def verified_stream(ref: ArtifactRef, blocks: Generator[bytes, None, None]) -> BinaryIO:
    """A buffered binary stream over `VerifiedReader`. The buffer is small: large reads go
    straight into the caller's buffer, and small ones (readline) need no more."""
    return io.BufferedReader(VerifiedReader(ref, blocks), READ_BUFFER_BYTES)


def file_blocks(handle: BinaryIO) -> Generator[bytes, None, None]:
    """The blocks of an open file, which is closed when the blocks end or are abandoned."""
    with handle:
        while block := handle.read(CHUNK_BYTES):
            yield block
            del block  # not kept alive (a MiB) while the next one is read


def copy_hashing(source: IO[bytes], write: Callable[[bytes], object]) -> tuple[str, int]:
    """Copy `source` to its end through `write` block by block; its sha256 and size."""
    digest = hashlib.sha256()
    size = 0
    while block := source.read(CHUNK_BYTES):
        digest.update(block)
        size += len(block)
        write(block)
        del block  # not kept alive (a MiB) while the next one is read
    return digest.hexdigest(), size


@contextmanager
def reading(source: Source) -> Iterator[BinaryIO]:
    """`source` as a binary stream: a path is opened (and closed after), a stream is lent."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            yield handle
    else:
        yield source


def copy_verified(stream: BinaryIO, path: str | os.PathLike[str]) -> None:
    """Copy a verified stream to `path` under a temporary name, fsync it and rename it into
    place, so `path` never holds unverified or partial bytes."""
    final = Path(path)
    # A name of its own, so two processes copying to one path never write into each other.
    partial = final.with_name(f".{final.name}.{uuid.uuid4().hex}.partial")
    try:
        with stream:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(descriptor, "wb") as out:
                while block := stream.read(CHUNK_BYTES):
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
        publish(partial, final)
    finally:
        partial.unlink(missing_ok=True)
