"""The request sets an Anthropic provider keeps as files: its "uploads".

The Message Batches API takes its requests inline, so the `uploaded` step writes the shard's
request set (`adapters.anthropic.requests`) beside the shard, and the "file id" recorded on the
job is `requests:<absolute path>`. That file is on the machine that made it. Another machine,
which creates the batch or looks for it after that one died, makes the request set again from
the job's shard (`local_input_from`, the caller verifying the shard against its recorded
sha256): a request set is made from its shard alone, so the bytes are the same.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from adapters.anthropic.requests import REQUEST_SET_SUFFIX, request_set_path, write_request_set
from adapters.anthropic.translate import RequestSetError
from adapters.base import NotFound, Rejected, RemoteFile

#: The "file id" of a local request set is this prefix and the file's absolute path.
REQUEST_SET_ID_PREFIX = "requests:"
#: The ledger's `jobs.input_file_id` column holds at most this many characters.
MAX_FILE_ID_CHARS = 200


class RequestSets:
    """The request-set files one provider object wrote or made again, and finding them."""

    def __init__(self) -> None:
        #: Request sets this process wrote, by upload name (found again without a search).
        self._written: dict[str, Path] = {}
        #: Request sets made again on this machine from a job's shard, by the file id naming
        #: the one the upload wrote (perhaps elsewhere): `local_input_from`.
        self._remade: dict[str, Path] = {}

    def upload(self, path: Path, filename: str) -> RemoteFile:
        """Write the request set of the shard at `path` beside it, named after `filename`."""
        destination = request_set_path(path.resolve(), filename)
        try:
            write_request_set(path, destination)
        except RequestSetError as error:
            raise Rejected(str(error)) from None
        self._written[filename] = destination
        return _request_set_file(destination, filename)

    def find(self, filename: str) -> list[RemoteFile]:
        """The request sets uploaded as `filename` that this machine holds, oldest first."""
        # The request set is local and rewriting it is harmless, so finding it again only
        # saves work. The ledger's layout is `runs/<run>/batch_inputs/`, from the working
        # directory; a reconciler started elsewhere writes the set again.
        name = request_set_path(Path(filename), filename).name
        candidates = [self._written.get(filename)] + [
            Path(p) for p in sorted(glob.glob(f"runs/*/batch_inputs/{glob.escape(name)}"))
        ]
        found: dict[Path, RemoteFile] = {}
        for candidate in candidates:
            if candidate is not None and candidate.is_file():
                resolved = candidate.resolve()
                found.setdefault(resolved, _request_set_file(resolved, filename))
        return sorted(found.values(), key=lambda f: (f.created_at, f.id))

    def path_of(self, file_id: str) -> Path:
        """The file holding the request set `file_id` names: the one made again here while
        `local_input_from` runs, else the upload's own; NotFound when neither is here."""
        remade = self._remade.get(file_id)
        if remade is not None:
            return remade
        if not file_id.startswith(REQUEST_SET_ID_PREFIX):
            raise NotFound(f"{file_id} is not an Anthropic request set")
        path = Path(file_id.removeprefix(REQUEST_SET_ID_PREFIX))
        if not path.is_file():
            raise NotFound(f"the request set {path} is gone")
        return path

    def is_here(self, file_id: str) -> bool:
        """Whether the request set `file_id` names can be read on this machine."""
        with contextlib.suppress(NotFound):
            self.path_of(file_id)
            return True
        return False

    @contextlib.contextmanager
    def local_input_from(self, file_id: str, shard: Path) -> Iterator[None]:
        """While the block runs, `file_id` reads as a request set written now from `shard` in
        a scratch folder (removed afterwards)."""
        folder = Path(tempfile.mkdtemp(prefix="ledger-anthropic-requests-"))
        try:
            destination = folder / f"remade{REQUEST_SET_SUFFIX}"
            try:
                write_request_set(shard, destination)
            except RequestSetError as error:
                raise Rejected(str(error)) from None
            self._remade[file_id] = destination
            yield
        finally:
            self._remade.pop(file_id, None)
            shutil.rmtree(folder, ignore_errors=True)

    def delete(self, file_id: str) -> None:
        """Remove the request set `file_id` names, where it is on this machine."""
        if file_id.startswith(REQUEST_SET_ID_PREFIX):
            Path(file_id.removeprefix(REQUEST_SET_ID_PREFIX)).unlink(missing_ok=True)


def _request_set_file(path: Path, filename: str) -> RemoteFile:
    file_id = f"{REQUEST_SET_ID_PREFIX}{path}"
    if len(file_id) > MAX_FILE_ID_CHARS:
        raise Rejected(
            f"the request set's path {path} is too long for the ledger's input_file_id "
            f"({MAX_FILE_ID_CHARS} characters): keep runs in a shorter directory"
        )
    stat = path.stat()
    return RemoteFile(file_id, filename, stat.st_size, int(stat.st_mtime))
