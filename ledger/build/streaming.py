"""Streaming one input into shard files: the per-chunk steps of a build.

Each chunk of records is made into requests (simple rows or ready lines, decided by the first
record), their tokens counted, checked against the limits, deduplicated in the spool and placed in
shards. A bad row stops the build (`InputError`), or with `skip_invalid` is reported and left out.
Nothing here touches the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.build.bodies import BatchRequest, ReadyLineChecker, RowBuilder, RowProblem
from ledger.build.endpoints import RESPONSES, resolve_endpoint
from ledger.build.inputs import InputFile
from ledger.build.shards import Shard, ShardSet
from ledger.build.spool import RequestSpool
from ledger.errors import InputError
from ledger.usage.capabilities import ModelTable
from ledger.usage.checks import check_request, prompt_headroom
from ledger.usage.tokens import TokenCounters

if TYPE_CHECKING:
    from ledger.build.run import BuildOptions

#: The staging directory's subdirectory for shard files (and the run directory's).
SHARD_DIR = "batch_inputs"

#: Called with one line per skipped row (`--skip-invalid`).
SkipReporter = Callable[[str], None]


@dataclass
class Built:
    """What streaming the input produced, before anything is recorded."""

    input_sha256: str
    endpoint: str
    model: str
    shards: list[Shard]
    spool: RequestSpool
    shard_set: ShardSet
    skipped: int
    warnings: tuple[str, ...]


class Streamer:
    """The per-chunk steps of one build: make requests, count, dedupe, place."""

    def __init__(
        self,
        source: InputFile,
        staging: Path,
        options: BuildOptions,
        on_skip: SkipReporter | None,
        table: ModelTable,
    ) -> None:
        from adapters.registry import request_rules

        self.source = source
        self.options = options
        self.on_skip = on_skip
        self.limits = options.shard_limits()
        self.counters = TokenCounters() if options.count_tokens else None
        self.spool = RequestSpool(staging / "spool.sqlite")
        self.shards = ShardSet(staging / SHARD_DIR, self.limits)
        self.endpoint: str | None = (
            resolve_endpoint(options.endpoint) if options.endpoint is not None else None
        )
        self.make: Callable[[dict[str, Any], bytes, int], BatchRequest] | None = None
        #: The builder of simple rows, once the first record showed them.
        self.builder: RowBuilder | None = None
        self.table = table
        self.rules = request_rules(options.provider)
        #: Warnings of the model checks, each said once (a dict keeps their order).
        self.warnings: dict[str, None] = {}
        #: Per model, the tokens of its prompt rows' body without the prompt.
        self.template_counts: dict[str, int] = {}
        #: Per model, the checks' answer for its shared bodies (see `accepted_by_provider`).
        self.shared_checks: dict[str, tuple[str | None, float]] = {}
        self.accepted = 0
        self.skipped = 0

    def reject(self, problem: RowProblem, line_number: int) -> None:
        """Stop the build on a bad row, or (skip_invalid) report it and go on."""
        message = problem.describe(self.source.display, line_number)
        if not self.options.skip_invalid:
            raise InputError(message)
        self.skipped += 1
        if self.on_skip is not None:
            self.on_skip(message)

    def chunk(self, records: list[tuple[int, Any, bytes]]) -> None:
        """Take one chunk of records through every step (with `limit`, no record past it)."""
        limit = self.options.limit
        if limit is None:
            self.steps(records)
            return
        start = 0
        while start < len(records) and not self.done():
            # A record makes at most one request, so this many cannot pass the limit.
            part = records[start : start + limit - self.accepted]
            start += len(part)
            self.steps(part)

    def steps(self, records: list[tuple[int, Any, bytes]]) -> None:
        """Make, count, check, dedupe and place the requests of these records."""
        requests = self.requests(records)
        if not requests:
            return
        if self.counters is not None:
            requests = self.count_tokens(requests)
        requests = self.accepted_by_provider(requests)
        requests = self.within_limits(requests)
        requests = self.unique(requests)
        self.shards.place(requests)
        self.accepted += len(requests)

    def requests(self, records: list[tuple[int, Any, bytes]]) -> list[BatchRequest]:
        """The request of each good record."""
        if self.make is None:
            first = next((v for _, v, _ in records if not isinstance(v, RowProblem)), None)
            if first is not None:
                self.choose_format(first)
        if self.builder is not None:
            return self.builder.requests(records, self.reject)
        made: list[BatchRequest] = []
        for line_number, value, raw in records:
            try:
                if isinstance(value, RowProblem):
                    raise value
                make = self.make or self.choose_format(value)
                made.append(make(value, raw, line_number))
            except RowProblem as problem:
                self.reject(problem, line_number)
        return made

    def choose_format(self, first: Mapping[str, Any]) -> Callable[..., BatchRequest]:
        """Ready Batch API lines or simple rows, decided by the first record."""
        if self.source.format == "jsonl" and any(k in first for k in ("body", "url", "method")):
            shaping = self.options.body_options(self.endpoint or RESPONSES).shaping_options()
            for option, value in shaping.items():
                if value:
                    raise InputError(
                        f"{option}: does not apply to ready Batch API lines (their bodies are "
                        "sent as they are)"
                    )
            checker = ReadyLineChecker(self.endpoint, self.options.model)

            def ready(value: dict[str, Any], raw: bytes, line_number: int) -> BatchRequest:
                request = checker.request(value, raw.strip(), line_number)
                self.endpoint = checker.endpoint
                return request

            self.make = ready
        else:
            self.endpoint = self.endpoint or self.options.default_endpoint()
            # Bodies are only read by a provider's own rules (the model checks read one per
            # model, token counting one per model and the prompt): without those, a prompt
            # row's line is all it needs.
            keep = self.rules.problem is not None
            builder = self.builder = RowBuilder(
                self.options.body_options(self.endpoint), keep_bodies=keep
            )
            self.make = lambda value, _raw, line_number: builder.request(value, line_number)
        return self.make

    def count_tokens(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Set each request's estimated input tokens; refuse those over `max_context`."""
        assert self.counters is not None and self.endpoint is not None
        endpoint, max_context = self.endpoint, self.options.max_context
        model, count, encode, base = None, None, None, 0
        kept = []
        for request in requests:
            if request.model != model:
                model = request.model
                counter = self.counters.for_model(model)
                count, encode = counter.for_endpoint(endpoint), counter.encode_ordinary
                base = self.template_tokens(model, count)
            assert count is not None and encode is not None
            prompt = request.prompt
            if prompt is not None and base is not None:
                # A template's body with this prompt: the template's tokens plus the prompt's
                # (each message counts on its own, so the sum is exact).
                request.est_tokens = tokens = base + len(encode(prompt))
            else:
                request.est_tokens = tokens = count(request.parsed_body())
            if max_context is not None:
                needed = tokens + (request.max_output_tokens or 0)
                if needed > max_context:
                    output = (
                        f" + {request.max_output_tokens} output"
                        if request.max_output_tokens
                        else ""
                    )
                    self.reject(
                        RowProblem(
                            f"needs about {tokens} input{output} tokens, more than "
                            f"--max-context {max_context}"
                        ),
                        request.line_number,
                    )
                    continue
            kept.append(request)
        return kept

    def template_tokens(self, model: str, count: Callable[[Mapping[str, Any]], int]) -> int | None:
        """The tokens of `model`'s prompt-row body with an empty prompt, counted once."""
        known = self.template_counts.get(model)
        if known is None and self.builder is not None:
            known = self.template_counts[model] = count(self.builder.prompt_body(model, ""))
        return known

    def accepted_by_provider(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Refuse what the provider would answer 400 to (the model table's rules, and the
        provider's own request rules); keep each warning once.

        A `shared` body (a simple row's text with only the shared parameters) is checked once
        per model: its answer stands for every such body of that model, unless its counted
        tokens pass the context headroom, when the body is checked on its own."""
        assert self.endpoint is not None
        endpoint, provider, problem_of = self.endpoint, self.options.provider, self.rules.problem
        takes = self.rules.endpoints
        checked, refusal_of = self.shared_checks, self.refusal
        kept = []
        for request in requests:
            if takes is not None and endpoint not in takes:
                # Only ready lines can name another endpoint: --endpoint was checked earlier.
                message = f"provider {provider} takes {' and '.join(takes)} only"
                self.reject(RowProblem(message, "url"), request.line_number)
                continue
            if request.shared:
                known = checked.get(request.model)
                if known is None:
                    known = checked[request.model] = self.check_shared(request)
                refusal, headroom = known
                tokens = request.est_tokens
                if tokens is not None and tokens > headroom:
                    refusal = refusal_of(request)
            else:
                refusal = refusal_of(request)
            if refusal is None and problem_of is not None:
                problem = problem_of(request.custom_id, request.parsed_body())
                refusal = f"provider {provider}: {problem}" if problem is not None else None
            if refusal is not None:
                self.reject(RowProblem(refusal), request.line_number)
                continue
            kept.append(request)
        return kept

    def refusal(self, request: BatchRequest, counted: bool = True) -> str | None:
        """The first refusal of the model checks of this request (its warnings kept)."""
        assert self.endpoint is not None
        refusal = None
        for found in check_request(
            request.model,
            request.parsed_body(),
            provider=self.options.provider,
            endpoint=self.endpoint,
            counted_tokens=request.est_tokens if counted else None,
            table=self.table,
        ):
            if found.warning:
                self.warnings[str(found)] = None
            elif refusal is None:
                refusal = str(found)
        return refusal

    def check_shared(self, request: BatchRequest) -> tuple[str | None, float]:
        """The answer of the model checks for every shared body of this request's model, and
        the most counted tokens that answer holds for."""
        assert self.endpoint is not None
        headroom = prompt_headroom(
            request.model, request.parsed_body(), endpoint=self.endpoint, table=self.table
        )
        return self.refusal(request, counted=False), headroom

    def within_limits(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Leave out (or refuse) requests too large for any shard on their own."""
        limits = self.limits
        max_bytes = limits.max_bytes
        max_tokens = limits.max_tokens if limits.max_tokens is not None else float("inf")
        # Most requests are far within both: `problem_with` says why for the others.
        for request in requests:
            if len(request.line) >= max_bytes or (request.est_tokens or 0) > max_tokens:
                break
        else:
            return requests
        kept = []
        for request in requests:
            problem = limits.problem_with(request)
            if problem is None:
                kept.append(request)
            else:
                self.reject(problem, request.line_number)
        return kept

    def unique(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Record requests in the spool; a custom_id seen before is a bad row."""
        duplicates = self.spool.add(requests)
        if not duplicates:
            return requests
        dropped = set()
        for request, first in duplicates:
            self.reject(RowProblem(f"duplicate of line {first}", "custom_id"), request.line_number)
            dropped.add(request.line_number)
        return [r for r in requests if r.line_number not in dropped]

    def done(self) -> bool:
        """Whether `limit` requests were taken."""
        return self.options.limit is not None and self.accepted >= self.options.limit


def build_shards(
    source: InputFile,
    staging: Path,
    options: BuildOptions,
    on_skip: SkipReporter | None,
    table: ModelTable,
) -> Built:
    """Stream the input into shard files in `staging`; refuse it (InputError) if it is bad.
    Each request is checked against the model `table` and the provider's request rules."""
    with source:
        streamer = Streamer(source, staging, options, on_skip, table)
        try:
            for records in source.chunks():
                streamer.chunk(records)
                if streamer.done():
                    break
            input_sha256 = source.finish_hash()
        except BaseException:
            streamer.shards.abandon()
            streamer.spool.close()
            raise
    if streamer.accepted == 0:
        if streamer.skipped:
            raise InputError(f"{source.display}: no valid requests ({streamer.skipped} skipped)")
        raise InputError(f"{source.display}: empty input (no requests)")
    assert streamer.endpoint is not None
    shards = streamer.shards.close()
    models = list(streamer.spool.models)
    return Built(
        input_sha256=input_sha256,
        endpoint=streamer.endpoint,
        model=options.model or models[0],
        shards=shards,
        spool=streamer.spool,
        shard_set=streamer.shards,
        skipped=streamer.skipped,
        warnings=(
            *(streamer.counters.warnings if streamer.counters else ()),
            *streamer.warnings,
            *_unpriced(models, table),
        ),
    )


def _unpriced(models: list[str], table: ModelTable) -> list[str]:
    """A warning for each model the table knows but has no price for (an unknown model was
    warned about by its check): its cost shows as unknown, never $0."""
    warnings = []
    for model in models:
        info = table.lookup(model)
        if info is not None and info.price is None:
            warnings.append(f"model {model}: no price in the model table: its cost is unknown")
    return warnings
