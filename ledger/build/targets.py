"""Where a request goes: a provider and a model, named `provider:model` (`anthropic:claude-
haiku-4-5`) or by the model alone (the run's `--provider`).

A run names its targets with `--model` (repeatable: every row goes to each, the same prompts fanned
out to several models) or per row in a `model` column. Model names may hold colons of their own
(Ollama's `llama3:8b`, OpenAI's `ft:gpt-4o-mini:org::id`), so the part before the first colon is a
provider only when it names one; an unknown prefix before a model the model table knows is a
typo of a provider (`antropic:claude-haiku-4-5`) and refused.

When a row fans out to several targets, each request's custom_id is the row's with `-m1`,
`-m2`, ... (the target's place in `--model`), so custom_ids stay unique in the run and Anthropic's
`[A-Za-z0-9_-]` still takes them; one target keeps the row's custom_id as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from ledger.build.bodies import (
    CUSTOM_ID_MAX,
    BatchRequest,
    RowBuilder,
    RowProblem,
)
from ledger.build.body_hash import hashed_template, templated_line
from ledger.build.body_options import BodyOptions
from ledger.build.endpoints import RESPONSES
from ledger.build.row_checks import plain_prompt
from ledger.config import CONFIG_FILE, LedgerConfig, submit_provider
from ledger.errors import InputError
from ledger.usage.capabilities import ModelTable

#: A prompt row's line cut around its custom_id and text (`RowBuilder.template`), and the
#: blake2b its reuse hash is a copy of (`ledger.build.body_hash.hashed_template`).
Template = tuple[bytes, bytes, bytes, Any]
#: Where a prompt row's request goes: provider, model, custom_id suffix, and its template (None:
#: its body is built as a dict).
Route = tuple[str, str, str, Template | None]

#: What a provider name looks like (a typo of one is refused only if it looks like one).
_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


@dataclass(frozen=True, slots=True)
class Target:
    """One provider and one model."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


class TargetParser:
    """Reads `provider:model` (or a bare model, for `default_provider`) against the providers
    batch jobs can go to; each distinct text is parsed once (rows repeat their model)."""

    def __init__(
        self,
        default_provider: str,
        providers: Collection[str],
        known_model: Callable[[str], bool] = lambda _model: False,
    ) -> None:
        self.default_provider = default_provider
        self.providers = frozenset(providers)
        self.known_model = known_model
        self._seen: dict[str, Target] = {}

    def parse(self, text: str, field: str = "model") -> Target:
        """The target `text` names; RowProblem naming `field` when it cannot be one."""
        found = self._seen.get(text)
        if found is None:
            found = self._seen[text] = self._parse(text, field)
        return found

    def _parse(self, text: str, field: str) -> Target:
        prefix, colon, rest = text.partition(":")
        if colon and prefix in self.providers:
            if not rest or rest.isspace():
                raise RowProblem(f"{text!r} names provider {prefix} but no model", field)
            return Target(prefix, rest)
        if colon and _PROVIDER_NAME.fullmatch(prefix) and self.known_model(rest):
            known = ", ".join(sorted(self.providers))
            raise RowProblem(
                f"unknown provider {prefix!r} in {text!r} (known: {known})",
                field,
            )
        return Target(self.default_provider, text)


def fanned_custom_id(custom_id: str, place: int, count: int) -> str:
    """The custom_id of a row's request to the `place`-th (1-based) of `count` targets."""
    if count == 1:
        return custom_id
    fanned = f"{custom_id}-m{place}"
    if len(fanned) > CUSTOM_ID_MAX:
        raise RowProblem(
            f"{len(custom_id)} characters: with the suffix -m{place} of a run over {count} "
            f"models it passes {CUSTOM_ID_MAX}",
            "custom_id",
        )
    return fanned


def target_parser(default_provider: str, table: ModelTable | None = None) -> TargetParser:
    """A parser over the registered batch providers; `table` (the model table) tells a typo of
    a provider from a model name holding a colon."""
    from adapters.registry import REGISTRY

    def known(model: str) -> bool:
        return table is not None and table.lookup(model) is not None

    return TargetParser(default_provider, list(REGISTRY), known)


def option_targets(models: str | Sequence[str] | None, parser: TargetParser) -> tuple[Target, ...]:
    """The targets `--model` names (none: each row names its model); InputError `--model: ...`
    for one that cannot be a target, or the same target twice."""
    given = (models,) if isinstance(models, str) else tuple(models or ())
    targets: list[Target] = []
    for text in given:
        try:
            target = parser.parse(text)
        except RowProblem as problem:
            raise InputError(f"--model: {problem.message}") from None
        if target in targets:
            raise InputError(f"--model: {target} given twice")
        targets.append(target)
    return tuple(targets)


def common_endpoint(providers: Iterable[str]) -> str:
    """The endpoint simple rows go to without --endpoint: the first one every provider takes
    (Anthropic takes chat only), else responses; InputError when they share none."""
    from adapters.registry import request_rules

    chosen: list[str] | None = None
    for provider in dict.fromkeys(providers):
        takes = request_rules(provider).endpoints
        if takes is None:
            continue
        chosen = [e for e in (chosen if chosen is not None else takes) if e in takes]
        if not chosen:
            raise InputError(
                f"--model: provider {provider} takes {' and '.join(takes)} only, which no "
                "endpoint of the other providers matches: submit them as separate runs"
            )
    return chosen[0] if chosen else RESPONSES


class RowMaker:
    """The requests of simple rows: one to the model a row's `model` column names (or the one
    `--model`), else one to each `--model` target, custom_ids made unique (`fanned_custom_id`).

    `requests` is the build's hot loop; calling the maker makes one row's requests the general
    way. `keep_bodies`: build each prompt row's body as a dict too (else `BatchRequest.body` is
    None, and `parsed_body` reads it back from the line if ever needed)."""

    def __init__(
        self,
        body: BodyOptions,
        parser: TargetParser,
        targets: Sequence[Target],
        *,
        keep_bodies: bool = True,
    ):
        self.parser = parser
        self.targets = tuple(targets)
        self.default = targets[0].provider if targets else parser.default_provider
        self.builders = [RowBuilder(replace(body, model=t.model)) for t in targets] or [
            RowBuilder(replace(body, model=None))
        ]
        self.keep_bodies = keep_bodies
        count = len(self.targets)
        #: Where a row without a model column goes: a route per target; None without --model
        #: (such a row is the general path's problem).
        self._fan: tuple[Route, ...] | None = (
            tuple(
                self._route_to(t, f"-m{place}" if count > 1 else "")
                for place, t in enumerate(self.targets, 1)
            )
            or None
        )
        #: The route of every prompt row without a model column, when that is one target
        #: with its template (`ledger.build.prompt_columns`); else None.
        self.only_route = self._fan[0] if self._fan and len(self._fan) == 1 else None
        if self.only_route is not None and self.only_route[3] is None:
            self.only_route = None
        #: The longest row custom_id whose fanned ones stay within CUSTOM_ID_MAX.
        self._longest_id = CUSTOM_ID_MAX - (len(f"-m{count}") if count > 1 else 0)
        #: Per model column text, where its rows go (None: not a target, the general path says).
        self._routes: dict[str, tuple[Route, ...] | None] = {}

    def __call__(
        self, row: dict[str, Any], _raw: bytes, line_number: int
    ) -> BatchRequest | list[BatchRequest]:
        named = row.get("model")
        if named is None and len(self.targets) > 1:
            return self.fan_out(row, line_number)
        provider = self.default
        if type(named) is str and named:
            target = self.parser.parse(named)
            provider = target.provider
            if target.model != named:
                row = {**row, "model": target.model}
        request = self.builders[0].request(row, line_number)
        request.provider = provider
        return request

    def fan_out(self, row: dict[str, Any], line_number: int) -> list[BatchRequest]:
        """The row's request to each target, in `--model` order."""
        base = self.builders[0].request(row, line_number).custom_id
        count = len(self.targets)
        made = []
        for place, (target, builder) in enumerate(zip(self.targets, self.builders, strict=True)):
            fanned = {**row, "custom_id": fanned_custom_id(base, place + 1, count)}
            request = builder.request(fanned, line_number)
            request.provider = target.provider
            made.append(request)
        return made

    def requests(
        self,
        records: Iterable[tuple[int, Any, bytes]],
        reject: Callable[[RowProblem, int], None],
    ) -> list[BatchRequest]:
        """The requests of each record (line number, row or RowProblem, raw line) in order,
        a fanned-out row's in `--model` order; `reject` hears each bad one.

        The commonest row, `{"id": ..., "prompt": "..."}` with the shared parameters, is built
        right here, with no call per row but orjson's (the build's hot loop: measured with
        bench/build.py), its line from its target's template; any other row goes through the
        general way (`__call__`), which builds it or says what is wrong. Both make the same
        bytes for the same row."""
        made: list[BatchRequest] = []
        append, dumps = made.append, orjson.dumps
        builder = self.builders[0]
        fast, endpoint, cap, plain = (
            builder.templated,
            builder.endpoint,
            builder.shared_cap,
            builder.plain,
        )
        fan, longest_id, routes = self._fan, self._longest_id, self._routes
        for line_number, row, raw in records:
            goes = None
            text: Any = ""
            custom_id: Any = ""
            simple = plain_prompt(row, line_number) if fast else None
            if simple is not None:
                text, custom_id = simple
                named = row.get("model")
                if named is None:
                    # To every --model target (a fanned id too long: the general way says).
                    goes = fan if len(custom_id) <= longest_id else None
                elif type(named) is str:
                    try:
                        goes = routes[named]
                    except KeyError:
                        goes = routes[named] = self._route(named)
            if goes is None:
                try:
                    if isinstance(row, RowProblem):
                        raise row
                    request = self(row, raw, line_number)
                    if type(request) is list:
                        made.extend(request)
                    else:
                        append(request)  # type: ignore[arg-type]
                except RowProblem as problem:
                    reject(problem, line_number)
                continue
            for provider, model, suffix, template in goes:
                request_id = custom_id + suffix if suffix else custom_id
                if template is not None:
                    line, digest = templated_line(template, request_id, text)
                    append(
                        BatchRequest(
                            line_number,
                            request_id,
                            model,
                            line,
                            None,
                            1,
                            cap,
                            None,
                            provider,
                            plain,
                            text,
                            None,
                            digest,
                        )
                    )
                    continue
                body = builder.prompt_body(model, text)
                line = dumps(
                    {"custom_id": request_id, "method": "POST", "url": endpoint, "body": body}
                )
                append(
                    BatchRequest(
                        line_number,
                        request_id,
                        model,
                        line,
                        body,
                        1,
                        cap,
                        provider=provider,
                        shared=plain,
                        prompt=text,
                    )
                )
        return made

    def _route(self, named: Any) -> tuple[Route, ...] | None:
        """Where a row whose model column is `named` goes; None when the general way must
        say what is wrong with it."""
        if type(named) is not str or not named:
            return None
        try:
            target = self.parser.parse(named)
        except RowProblem:
            return None
        return (self._route_to(target, ""),)

    def _route_to(self, target: Target, suffix: str) -> Route:
        """The route of a prompt row's request to `target`: with its template unless bodies
        are kept (or its model's template cannot be cut)."""
        template = None
        if not self.keep_bodies:
            template = hashed_template(self.builders[0].template(target.model), target.provider)
        return (target.provider, target.model, suffix, template)


def check_target_providers(
    config: LedgerConfig, providers: Iterable[str], base_url: str | None
) -> None:
    """Refuse, before anything is built, a `--model PROVIDER:MODEL` whose provider batch jobs
    cannot go to (`providers`: those of the --model targets), and `--base-url` for a run over
    several providers: one URL cannot serve them all, each one's `base_url` goes in ledger.toml."""
    chosen = sorted({submit_provider(config, name) for name in providers})
    if base_url is not None and len(chosen) > 1:
        raise InputError(
            f"--base-url: this run goes to {len(chosen)} providers ({', '.join(chosen)}); "
            f"give each its base_url in [providers.NAME] of {config.path or CONFIG_FILE} instead"
        )
