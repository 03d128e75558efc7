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

from ledger.build.bodies import BatchRequest, ReadyLineChecker, RowProblem
from ledger.build.body_hash import hash_bodies
from ledger.build.counting import RequestCounter
from ledger.build.endpoints import RESPONSES, resolve_endpoint
from ledger.build.inputs import InputFile
from ledger.build.prompt_columns import take_prompt_columns
from ledger.build.reuse import Lookup, Reuser
from ledger.build.row_checks import EST_TOKENS, SHARED, one_target
from ledger.build.shards import Shard, ShardSet
from ledger.build.spool import RequestSpool
from ledger.build.targets import RowMaker, option_targets, target_parser
from ledger.errors import InputError
from ledger.usage.capabilities import ModelTable
from ledger.usage.checks import check_request, prompt_headroom

if TYPE_CHECKING:
    from adapters.registry import RequestRules
    from ledger.build.run import BuildOptions

#: The staging directory's subdirectory for shard files (and the run directory's).
SHARD_DIR = "batch_inputs"

#: Called with one line per skipped row (`--skip-invalid`).
SkipReporter = Callable[[str], None]

#: What a record makes: one request, or one per target when a row fans out.
Made = BatchRequest | list[BatchRequest]


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
    #: Whether every token count is the model's own (tiktoken for OpenAI models, Anthropic's
    #: endpoint for Claude); False when some were approximated.
    tokens_exact: bool = True
    #: With `--reuse`: the requests answered without a send (None without it).
    reuser: Reuser | None = None


class Streamer:
    """The per-chunk steps of one build: make requests, count, dedupe, place."""

    def __init__(
        self,
        source: InputFile,
        staging: Path,
        options: BuildOptions,
        on_skip: SkipReporter | None,
        table: ModelTable,
        lookup: Lookup | None = None,
    ) -> None:
        self.source = source
        self.options = options
        self.on_skip = on_skip
        self.limits = options.shard_limits()
        asked = options.count_claude_tokens or options.count_gemini_tokens
        claude_counter = options.claude_counter if asked else None
        self.counter = (
            RequestCounter(options.max_context, claude_counter) if options.count_tokens else None
        )
        self.spool = RequestSpool(staging / "spool.sqlite")
        self.reuser = Reuser(self.spool, lookup) if lookup is not None else None
        # Each provider's shards are cut to its own limits (a run may go to several).
        self.shards = ShardSet(staging / SHARD_DIR, self.limits, limits_for=options.shard_limits)
        self.endpoint: str | None = (
            resolve_endpoint(options.endpoint) if options.endpoint is not None else None
        )
        self.make: Callable[[dict[str, Any], bytes, int], Made] | None = None
        self.table = table
        self.parser = target_parser(options.provider, table)
        self.targets = option_targets(options.model, self.parser)
        #: Requests one record makes: one per --model target when rows fan out.
        self.per_record = max(1, len(self.targets))
        #: The model of the run row: the one --model, else the first request's.
        self.default_model = self.targets[0].model if len(self.targets) == 1 else None
        #: Warnings of the model checks, each said once (a dict keeps their order).
        self.warnings: dict[str, None] = {}
        #: Per (provider, model), the checks' answer for its shared bodies (see
        #: `accepted_by_provider`).
        self.shared_checks: dict[tuple[str, str], tuple[str | None, float]] = {}
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
            # A record makes at most `per_record` requests, so this many cannot pass the limit
            # (with several --model, `limit` counts rows: each goes to every model).
            room = (limit * self.per_record - self.accepted) // self.per_record
            part = records[start : start + max(1, room)]
            start += len(part)
            self.steps(part)

    def steps(self, records: list[tuple[int, Any, bytes]]) -> None:
        """Make, count, check, dedupe and place the requests of these records."""
        if take_prompt_columns(self, records):
            return
        requests = self.requests(records)
        if not requests:
            return
        if self.counter is not None:
            assert self.endpoint is not None
            maker = self.make if isinstance(self.make, RowMaker) else None
            prompt_body = maker.builders[0].prompt_body if maker is not None else None
            requests = self.counter.count(requests, self.endpoint, prompt_body, self.reject)
        requests = self.accepted_by_provider(requests)
        requests = self.within_limits(requests)
        requests = self.unique(requests)
        self.accepted += len(requests)
        if self.reuser is not None:
            requests = self.reuser.take(requests)
        self.shards.place(requests)

    def requests(self, records: list[tuple[int, Any, bytes]]) -> list[BatchRequest]:
        """The request(s) of each good record."""
        if self.make is None:
            first = next((v for _, v, _ in records if not isinstance(v, RowProblem)), None)
            if first is not None:
                self.choose_format(first)
        if isinstance(self.make, RowMaker):
            return self.make.requests(records, self.reject)
        made: list[BatchRequest] = []
        for line_number, value, raw in records:
            try:
                if isinstance(value, RowProblem):
                    raise value
                make = self.make or self.choose_format(value)
                request = make(value, raw, line_number)
                if type(request) is list:
                    made.extend(request)
                else:
                    made.append(request)  # type: ignore[arg-type]
            except RowProblem as problem:
                self.reject(problem, line_number)
        return made

    def choose_format(self, first: Mapping[str, Any]) -> Callable[..., Made]:
        """Ready Batch API lines or simple rows, decided by the first record."""
        if self.source.format == "jsonl" and any(k in first for k in ("body", "url", "method")):
            shaping = self.options.body_options(self.endpoint or RESPONSES).shaping_options()
            for option, value in shaping.items():
                if value:
                    raise InputError(
                        f"{option}: does not apply to ready Batch API lines (their bodies are "
                        "sent as they are)"
                    )
            if len(self.targets) > 1:
                raise InputError(
                    "--model: ready Batch API lines name their model in body.model; to send "
                    "the same prompts to several models, use simple rows"
                )
            target = self.targets[0] if self.targets else None
            checker = ReadyLineChecker(self.endpoint, target.model if target else None)
            provider = target.provider if target else self.options.provider

            def ready(value: dict[str, Any], raw: bytes, line_number: int) -> BatchRequest:
                request = checker.request(value, raw.strip(), line_number)
                request.provider = provider
                self.endpoint = checker.endpoint
                return request

            self.make = ready
        else:
            self.endpoint = self.endpoint or self.options.default_endpoint()
            body = self.options.body_options(self.endpoint)
            # Bodies are only read by a provider's own rules (the model checks read one per
            # provider and model, token counting one per model and the prompt): without those,
            # a prompt row's line is all it needs (`parsed_body` reads it back if ever needed).
            from adapters.registry import request_rules

            providers = {t.provider for t in self.targets} or {self.options.provider}
            keep = any(request_rules(p).problem is not None for p in providers)
            self.make = RowMaker(body, self.parser, self.targets, keep_bodies=keep)
        return self.make

    def accepted_by_provider(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Refuse what the provider would answer 400 to (the model table's rules, and the
        provider's own request rules); keep each warning once.

        A `shared` body (a simple row's text with only the shared parameters) is checked once
        per provider and model: its answer stands for every such body of theirs, unless its
        counted tokens pass the context headroom, when the body is checked on its own."""
        assert self.endpoint is not None
        from adapters.registry import request_rules

        endpoint = self.endpoint
        if self.all_accepted(requests):
            return requests
        rules: dict[str, RequestRules] = {}
        checked, refusal_of = self.shared_checks, self.refusal
        provider, takes, problem_of = None, None, None
        kept = []
        for request in requests:
            if request.provider != provider:
                provider = request.provider
                if provider not in rules:
                    rules[provider] = request_rules(provider)
                takes, problem_of = rules[provider].endpoints, rules[provider].problem
            if takes is not None and endpoint not in takes:
                # A ready line's url, or a row's provider:model that --endpoint does not suit.
                message = f"provider {provider} takes {' and '.join(takes)} only"
                field = "model" if isinstance(self.make, RowMaker) else "url"
                self.reject(RowProblem(message, field), request.line_number)
                continue
            if request.shared:
                key = (request.provider, request.model)
                known = checked.get(key)
                if known is None:
                    known = checked[key] = self.check_shared(request)
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

    def all_accepted(self, requests: list[BatchRequest]) -> bool:
        """Whether the checks accept every request of a chunk of shared bodies of one provider
        and model (the commonest chunk) with no loop in Python: its shared answer, taken as the
        loop below would, holds when the provider has no rules and no count passes headroom."""
        key = one_target(requests)
        if key is None or not all(map(SHARED, requests)) or not self.unruled(key[0]):
            return False
        known = self.shared_checks.get(key)
        if known is None:
            known = self.shared_checks[key] = self.check_shared(requests[0])
        refusal, headroom = known
        tokens = [t for t in map(EST_TOKENS, requests) if t is not None]
        return refusal is None and (not tokens or max(tokens) <= headroom)

    def unruled(self, provider: str) -> bool:
        """Whether `provider` takes the endpoint and has no request rules of its own."""
        from adapters.registry import request_rules

        rules = request_rules(provider)
        takes = rules.endpoints
        return rules.problem is None and (takes is None or self.endpoint in takes)

    def refusal(self, request: BatchRequest, counted: bool = True) -> str | None:
        """The first refusal of the model checks of this request (its warnings kept)."""
        assert self.endpoint is not None
        refusal = None
        for found in check_request(
            request.model,
            request.parsed_body(),
            provider=request.provider,
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
        """The answer of the model checks for every shared body of this request's provider
        and model, and the most counted tokens that answer holds for."""
        assert self.endpoint is not None
        headroom = prompt_headroom(
            request.model,
            request.parsed_body(),
            provider=request.provider,
            endpoint=self.endpoint,
            table=self.table,
        )
        return self.refusal(request, counted=False), headroom

    def within_limits(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Leave out (or refuse) requests too large for any shard (of their provider's) on
        their own."""
        return (
            requests
            if self.shards.all_fit(requests)
            else self.shards.fitting(requests, self.reject)
        )

    def unique(self, requests: list[BatchRequest]) -> list[BatchRequest]:
        """Record requests in the spool, each with its reuse hash; a custom_id seen before is
        a bad row."""
        hash_bodies(requests)
        duplicates = self.spool.add(requests, counted=self.counter is not None)
        if not duplicates:
            return requests
        dropped = set()
        for request, first in duplicates:
            self.reject(RowProblem(f"duplicate of line {first}", "custom_id"), request.line_number)
            dropped.add(request.line_number)
        return [r for r in requests if r.line_number not in dropped]

    def done(self) -> bool:
        """Whether `limit` requests were taken."""
        limit = self.options.limit
        return limit is not None and self.accepted >= limit * self.per_record


def build_shards(
    source: InputFile,
    staging: Path,
    options: BuildOptions,
    on_skip: SkipReporter | None,
    table: ModelTable,
    lookup: Lookup | None = None,
) -> Built:
    """Stream the input into shard files in `staging`; refuse it (InputError) if it is bad.
    Each request is checked against the model `table` and the provider's request rules. With
    `lookup` (`--reuse`), requests answered already are not placed (`ledger.build.reuse`)."""
    with source:
        streamer = Streamer(source, staging, options, on_skip, table, lookup)
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
    models = list(dict.fromkeys(model for _, model in streamer.spool.models))
    return Built(
        input_sha256=input_sha256,
        endpoint=streamer.endpoint,
        model=streamer.default_model or models[0],
        shards=shards,
        spool=streamer.spool,
        shard_set=streamer.shards,
        skipped=streamer.skipped,
        warnings=(
            *(streamer.counter.all_warnings() if streamer.counter else ()),
            *streamer.warnings,
            *_unpriced(list(streamer.spool.models), table),
        ),
        tokens_exact=streamer.counter.exact() if streamer.counter else True,
        reuser=streamer.reuser,
    )


def _unpriced(models: list[tuple[str, str]], table: ModelTable) -> list[str]:
    """A warning for each model the table knows but has no price for (an unknown model was
    warned about by its check): its cost shows as unknown, never $0."""
    return [
        f"model {model}: no price in the model table: its cost is unknown"
        for provider, model in models
        if (info := table.lookup(model, provider)) is not None and info.price is None
    ]
