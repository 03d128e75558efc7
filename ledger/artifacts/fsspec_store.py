"""Artifacts at any fsspec URL: `s3://bucket/prefix`, `gs://...`, `az://...`, or `file://` on a
mount every machine shares. Needs the `artifacts-fsspec` extra (`pip install
'llm-batch-ledger[artifacts-fsspec]'`) plus the filesystem's own package (s3fs, gcsfs, adlfs),
which reads its credentials the usual way (environment, instance role, fsspec config).

The layout is the local folder store's, `<url>/ab/<sha256>`. A put writes
`<url>/.incoming-<random>.partial` and moves it into place, so a reader never sees a partial
artifact even on a filesystem whose writes are not atomic.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from ledger.artifacts.base import (
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

INSTALL_HINT = "pip install 'llm-batch-ledger[artifacts-fsspec]'"


class FsspecStore:
    """Artifacts as files under a folder of any fsspec filesystem."""

    kind = "fsspec"

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            from fsspec.core import url_to_fs
        except ImportError:
            raise ArtifactUnreachable(
                f"the artifact store {url} needs fsspec on this machine: {INSTALL_HINT}"
            ) from None
        try:
            self.fs, root = url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as error:
            raise ArtifactUnreachable(
                f"the artifact store {url} cannot be opened on this machine: {error}"
            ) from error
        self.url = url.rstrip("/")
        self._root = str(root).rstrip("/")

    def path_of(self, sha256: str) -> str:
        """The filesystem path the artifact with this sha256 is (or would be) kept at."""
        return f"{self._root}/{fanout(sha256)}"

    def put(self, source: Source) -> ArtifactRef:
        partial = f"{self._root}/.incoming-{uuid.uuid4().hex}.partial"
        with reading(source) as stream:
            try:
                self._writing(self.fs.makedirs, self._root, exist_ok=True)
                out = self._writing(self.fs.open, partial, "wb")
                try:
                    sha256, size = copy_hashing(stream, lambda data: self._writing(out.write, data))
                finally:
                    self._writing(out.close)
                final = self.path_of(sha256)
                self._writing(self.fs.makedirs, final.rpartition("/")[0], exist_ok=True)
                # Moving over an existing copy is harmless (the same bytes) and repairs a damaged
                # one.
                self._writing(self.fs.mv, partial, final)
            finally:
                self._discard(partial)
        return ArtifactRef.under(self.url, sha256, size)

    def open(self, ref: ArtifactRef) -> BinaryIO:
        path = self.path_of(ref.sha256)
        try:
            handle = self.fs.open(path, "rb")
        except FileNotFoundError:
            raise ArtifactUnreachable(f"{ref.label} is missing: no file {path}") from None
        except OSError as error:
            raise ArtifactUnreachable(f"{ref.label} cannot be opened: {error}") from error
        return verified_stream(ref, file_blocks(handle))

    def copy_to(self, ref: ArtifactRef, path: str | os.PathLike[str]) -> None:
        copy_verified(self.open(ref), path)

    def exists(self, ref: ArtifactRef) -> bool:
        return bool(self.fs.exists(self.path_of(ref.sha256)))

    def delete(self, ref: ArtifactRef) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path_of(ref.sha256))

    def list(self) -> Iterator[ArtifactRef]:
        try:
            found: dict[str, Any] = self.fs.find(self._root, detail=True)
        except FileNotFoundError:
            return
        root = self._root.strip("/") + "/"
        for path, info in sorted(found.items()):
            relative = str(path).strip("/").removeprefix(root)
            name = relative.rpartition("/")[2]
            if is_sha256(name) and relative == fanout(name):
                yield ArtifactRef.under(self.url, name, int(info["size"]))

    def _writing(self, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one write step; its failure (a full disk, no permission, the service down) is
        ArtifactUnreachable, while a failed read of the source stays the source's own error."""
        try:
            return step(*args, **kwargs)
        except OSError as error:
            raise ArtifactUnreachable(
                f"the artifact store {self.url} cannot be written: {error}"
            ) from error

    def _discard(self, partial: str) -> None:
        try:
            if self.fs.exists(partial):
                self.fs.rm(partial)
        except OSError:
            pass  # a leftover partial is litter for `ledger gc`, not a reason to fail the put
