"""Where a job's results file is written: into the artifact store (what `ledger results` reads)
and, on the machine holding the run's folder, a local copy beside the run's shards.

With a local-folder store the file is written once, straight into the store (hashed as written,
one fsync), and the local copy is a second name for the same file (a hard link) when both are on
one filesystem: no byte is written twice. With any other store (the database, fsspec) it is
written to a scratch file the store's `put` reads, and that file becomes the local copy.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.artifacts import ArtifactStore, LocalFolderStore
from ledger.core.durable import publish


@dataclass
class ResultsSink:
    """The open results file: `write` its lines; `ref` is the stored artifact once it ends."""

    write: Callable[[bytes], object]
    ref: str = ""


@contextmanager
def results_file(
    store: ArtifactStore, scratch: Path, local_copy: Path | None
) -> Iterator[ResultsSink]:
    """A results file put into `store` once the block ends, and kept at `local_copy` (None:
    the store alone holds it). Nothing is stored or published when the block raises."""
    if isinstance(store, LocalFolderStore):
        with store.writing() as writer:
            sink = ResultsSink(writer.write)
            yield sink
        assert writer.ref is not None
        sink.ref = str(writer.ref)
        if local_copy is not None:
            _link_or_copy(store.path_of(writer.ref.sha256), local_copy)
        return
    written = scratch / "results.jsonl"
    with written.open("wb", buffering=1 << 20) as out:
        sink = ResultsSink(out.write)
        yield sink
        out.flush()
        if local_copy is not None:  # it is published as the local copy (`put` syncs its own)
            os.fsync(out.fileno())
    sink.ref = str(store.put(written))
    if local_copy is not None:
        publish(written, local_copy)


def _link_or_copy(stored: Path, local_copy: Path) -> None:
    """Give the stored file a second name at `local_copy`, or copy it where a link cannot be
    made (another filesystem); either way `local_copy` appears whole or not at all."""
    partial = local_copy.with_name(f".{local_copy.name}.{uuid.uuid4().hex}.partial")
    try:
        try:
            # One file under two names: writing into the local copy in place would damage the
            # stored results. Read-only, so such a write fails instead (a rewrite that replaces
            # the file, as editors and `sed -i` do, leaves the stored one as it was).
            os.chmod(stored, 0o400)
            os.link(stored, partial)
        except OSError:
            shutil.copyfile(stored, partial)
            with partial.open("rb+") as copied:
                os.fsync(copied.fileno())
        publish(partial, local_copy)
    finally:
        partial.unlink(missing_ok=True)
