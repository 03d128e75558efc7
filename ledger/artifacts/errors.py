"""What can go wrong with an artifact (drawn in the tree of `ledger.errors`): one line, no
traceback, and the job that needed the artifact waits with the reason instead of using bytes it
cannot trust. A bad `artifact_store` setting is a `ConfigError`."""

from __future__ import annotations

from ledger.errors import LedgerError


class ArtifactError(LedgerError):
    """An artifact could not be stored or read back intact."""


class ArtifactCorrupt(ArtifactError):
    """The bytes read back are not the recorded ones (other sha256, other size, chunk missing)."""


class ArtifactUnreachable(ArtifactError):
    """The artifact is gone, or its store cannot be reached or written from this machine."""
