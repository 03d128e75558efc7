"""What one shard (one batch's input file) may hold: the Batch API's limits, the run's options
within them, and a provider's own where they are lower (`ledger.build.shards` cuts shards to them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ledger.build.row_checks import BatchRequest, RowProblem
from ledger.errors import InputError
from ledger.settings.setting import parse_size as parse_size

#: The Batch API's limits for one batch (one input file).
MAX_REQUESTS_PER_BATCH = 50_000
#: 200 MB, counted in decimal megabytes so it also holds if the provider meant MiB.
MAX_BYTES_PER_BATCH = 200_000_000
MAX_EMBEDDING_INPUTS_PER_BATCH = 50_000


@dataclass(frozen=True)
class ShardLimits:
    """What one shard may hold."""

    max_requests: int = MAX_REQUESTS_PER_BATCH
    max_bytes: int = MAX_BYTES_PER_BATCH
    max_tokens: int | None = None
    max_inputs: int = MAX_EMBEDDING_INPUTS_PER_BATCH

    def check(self) -> None:
        """Refuse limits above the provider's or below one request."""
        if not 1 <= self.max_requests <= MAX_REQUESTS_PER_BATCH:
            raise InputError(f"--max-requests: must be between 1 and {MAX_REQUESTS_PER_BATCH}")
        if not 1 <= self.max_bytes <= MAX_BYTES_PER_BATCH:
            raise InputError(f"--max-bytes: must be between 1 and {MAX_BYTES_PER_BATCH}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise InputError("--max-tokens-per-job: must be at least 1")

    def problem_with(self, request: BatchRequest) -> RowProblem | None:
        """Why this request could not go into any shard, if it could not."""
        size = len(request.line) + 1
        if size > self.max_bytes:
            return RowProblem(
                f"the request is {size} bytes, more than the {self.max_bytes} a job holds"
            )
        tokens = request.est_tokens or 0
        if self.max_tokens is not None and tokens > self.max_tokens:
            return RowProblem(
                f"about {tokens} input tokens, more than --max-tokens-per-job {self.max_tokens}"
            )
        return None


def within_provider_limits(limits: ShardLimits, provider: str) -> ShardLimits:
    """`limits`, lowered to what one batch of `provider` holds where that is less (Together:
    100 MB); the registry's factory says (`adapters.registry.batch_limits`). The shard's bytes
    are counted as built: a host whose envelope is rewritten at upload gets shorter lines."""
    from adapters.registry import REGISTRY, batch_limits

    most = batch_limits(provider) if provider in REGISTRY else None
    if most is None:
        return limits
    return replace(
        limits,
        max_requests=min(limits.max_requests, most[0]),
        max_bytes=min(limits.max_bytes, most[1]),
    )
