"""The Python API: the same ledger the CLI drives, for notebooks and application code.

    from ledger import Ledger

    ledger = Ledger.open("ledger.db")
    ledger.submit("questions.jsonl", model="gpt-4o-mini", run="eval-1")
    ledger.reconcile(run="eval-1", until_done=True)
    for result in ledger.results("eval-1"):
        print(result.custom_id, result.status, result.text)

Every method is a thin call into the library modules the CLI uses too (docs/python.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ledger import settings
from ledger.artifacts import choose_store
from ledger.build.plan import BuildPlan
from ledger.build.run import BuildOptions, build_fields, build_run
from ledger.build.targets import check_target_providers
from ledger.config import LedgerConfig, batch_provider_for, load_config, submit_provider
from ledger.core.db import open_ledger, resolve_url
from ledger.errors import LedgerError
from ledger.query.report import job_ids_for, status_report
from ledger.query.sql import QueryResult, run_readonly_query
from ledger.reconcile.cancel import cancel_jobs
from ledger.reconcile.engine import PassReport, PauseLoop, ReconcileOptions, Reconciler
from ledger.reconcile.send import send_run
from ledger.results.export import find_run_results, merged_results
from ledger.results.retry import RETRYABLE, RetryPlan, retry_run
from ledger.spend import BudgetSource, record_estimates
from ledger.spend.caps import record_run_cap


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ResultError:
    code: str | None
    message: str | None


@dataclass(frozen=True)
class Result:
    """One input request's normalized result (the schema of docs/results.md)."""

    custom_id: str
    #: succeeded, invalid, truncated, filtered, failed, expired, cancelled, missing or unavailable.
    status: str
    line_number: int
    http_status: int | None = None
    model: str | None = None
    text: str | None = None
    json: Any = None
    json_error: str | None = None
    refusal: str | None = None
    embedding: Any = None
    finish_reason: str | None = None
    usage: Usage | None = None
    error: ResultError | None = None
    request_id: str | None = None
    batch_id: str | None = None
    job_id: int | None = None
    #: The request whose answer this is, when it was copied instead of sent (`--reuse`).
    reused_from: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Result:
        """A typed result from one line of a results file."""
        known = {f.name for f in fields(cls)} - {"extra", "usage", "error"}
        usage = record.get("usage")
        error = record.get("error")
        return cls(
            **{k: v for k, v in record.items() if k in known},
            usage=Usage(**{k: v or 0 for k, v in usage.items()}) if usage else None,
            error=ResultError(error.get("code"), error.get("message")) if error else None,
            extra={k: v for k, v in record.items() if k not in known | {"usage", "error"}},
        )


class Ledger:
    """One ledger database and the runs recorded in it.

    Settings come as they do to the CLI: an argument given to a method wins, then one given to
    `open`, then `[defaults]` of the config file, then the built-in default (ledger.settings).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        config: LedgerConfig | None = None,
        base_url: str | None = None,
        poll_min: float | None = None,
        poll_max: float | None = None,
    ) -> None:
        self.engine = engine
        #: The settings file read (empty settings when none was), as `ledger --config` reads it.
        self.config = config or LedgerConfig()
        #: `[budget]` of the config (re-read when its file changes): ledger.spend.
        self._budget = BudgetSource(self.config)
        self.base_url = base_url
        reconcile_defaults = self._defaults("reconcile")
        self.poll_min: float = _first(poll_min, reconcile_defaults, "poll_min")
        self.poll_max: float = _first(poll_max, reconcile_defaults, "poll_max")
        settings.check({"poll_min": self.poll_min, "poll_max": self.poll_max})

    @classmethod
    def open(
        cls,
        db: str | os.PathLike[str] | None = None,
        *,
        config: str | os.PathLike[str] | LedgerConfig | None = None,
        base_url: str | None = None,
        poll_min: float | None = None,
        poll_max: float | None = None,
        artifact_store: str | None = None,
    ) -> Ledger:
        """Open (creating and migrating if needed) the ledger at `db`: a SQLite path or an
        SQLAlchemy URL; default `$LEDGER_DB` or ./ledger.db. `config` is the settings file, found
        as `ledger --config` finds it: this path, else `$LEDGER_CONFIG`, else ./ledger.toml when
        there is one (or settings already read, a `LedgerConfig`); its `[defaults]` are the
        defaults of `submit` and `reconcile`, its `[providers]` where batches go. `base_url` is
        where batches go (default: the provider's in the file, else `$OPENAI_BASE_URL`, else the
        provider's own API); `poll_min`/`poll_max` bound the polling backoff of every batch this
        object sends or reconciles. `artifact_store` is where new shards and result files go, as
        `ledger --artifact-store` takes it (default: `$LEDGER_ARTIFACT_STORE`, else a folder
        beside a SQLite ledger, the database itself for PostgreSQL; docs/production.md)."""
        loaded = config if isinstance(config, LedgerConfig) else load_config(config)
        engine = open_ledger(resolve_url(db))
        choose_store(engine, artifact_store)
        return cls(engine, config=loaded, base_url=base_url, poll_min=poll_min, poll_max=poll_max)

    def submit(
        self, input_path: str | os.PathLike[str], *, send: bool = True, **options: Any
    ) -> BuildPlan:
        """Build INPUT into shards and record the run (`options` are `BuildOptions` fields:
        run_name or run, model, endpoint, system, max_output_tokens, json_mode, ...; those not
        given come from `[defaults]`), then, with `send`, upload and create its batches.
        Idempotent per run name and input."""
        if "run" in options:
            options["run_name"] = options.pop("run")
        settings.check(options)
        # The file's values are read (a system @FILE, a json_schema file) only when they count.
        configured = {k: v for k, v in self._defaults("submit").items() if k not in options}
        configured.pop("poll_min", None)  # how soon a sent batch is polled: self.poll_min
        chosen = {**build_fields(configured), **options}
        provider = submit_provider(self.config, chosen.pop("provider", None))
        chosen.setdefault("models", self.config.models)
        max_cost = chosen.pop("max_cost", None)  # the run's cap, recorded in the ledger
        build_options = BuildOptions(provider=provider, **chosen)
        check_target_providers(self.config, (t.provider for t in build_options.targets()), None)
        plan = build_run(self.engine, Path(input_path), build_options)
        record_run_cap(self.engine, plan.run_name, max_cost)
        record_estimates(self.engine, self._budget.current(), plan.run_name)
        if send:
            self._send(plan.run_name)
        return plan

    def reconcile(
        self,
        *,
        run: str | None = None,
        until_done: bool = False,
        timeout: float | None = None,
        interval: float | None = None,
        **options: Any,
    ) -> PassReport | None:
        """One reconcile pass, or with `until_done` passes until nothing is left to do (or
        `timeout` seconds pass: LedgerError), `interval` seconds apart at most when nothing is
        due. `options` are `ReconcileOptions` fields (poll_min, poll_max, concurrency,
        max_enqueued_tokens, ...); those not given come from `[defaults]`."""
        settings.check({**options, "interval": interval})
        configured = dict(self._defaults("reconcile"))
        wait: float = _first(interval, configured, "interval")
        configured.pop("interval", None)
        chosen = {**configured, "poll_min": self.poll_min, "poll_max": self.poll_max, **options}
        reconciler = Reconciler(
            self.engine,
            ReconcileOptions(run_name=run, base_url=self.base_url, budget=self._budget, **chosen),
            provider_for=batch_provider_for(self.config),
        )
        if not until_done:
            return self._check(reconciler.run_pass())
        deadline = None if timeout is None else time.monotonic() + timeout
        while reconciler.pending_jobs():
            self._check(reconciler.run_pass())
            if deadline is not None and time.monotonic() > deadline:
                raise LedgerError(f"reconcile did not finish within {timeout:g} s")
            if reconciler.pending_jobs():
                time.sleep(min(wait, max(reconciler.seconds_to_next_due(), 0.01)))
        return None

    def results(self, run: str, *, statuses: Sequence[str] | None = None) -> Iterator[Result]:
        """The run's results in input order, one per input request, as typed records."""
        shards = find_run_results(self.engine, run).shards
        for _, record in merged_results(shards, statuses):
            yield Result.from_record(record)

    def results_frame(
        self, run: str, *, statuses: Sequence[str] | None = None, with_input: bool = False
    ) -> Any:
        """The run's results as a pandas DataFrame (the `pandas` extra): the columns of
        `ledger results --format parquet`, in input order; with `with_input`, the input row's
        fields as `input.<field>` columns (docs/results.md#dataframes)."""
        from ledger.results.frames import results_frame

        return results_frame(self.engine, run, statuses=statuses, with_input=with_input)

    def results_dataset(
        self, run: str, *, statuses: Sequence[str] | None = None, with_input: bool = False
    ) -> Any:
        """The run's results as a Hugging Face `datasets.Dataset` (the `datasets` extra), with
        the columns of `results_frame`."""
        from ledger.results.frames import results_dataset

        return results_dataset(self.engine, run, statuses=statuses, with_input=with_input)

    def status(self, run: str | None = None) -> list[dict[str, Any]]:
        """Per run: settings, jobs per state, requests per status, tokens, cost, jobs."""
        return status_report(self.engine, run)

    def retry(
        self,
        run: str,
        statuses: Sequence[str] = RETRYABLE,
        *,
        send: bool = True,
        max_output_tokens: int | None = None,
    ) -> RetryPlan:
        """New jobs for the run's finished requests that `statuses` selects (status words, HTTP
        statuses or classes like `5xx`, error codes), each asking for `max_output_tokens` when
        given; sent unless `send` is off (then the next reconcile sends them). A plan with no
        jobs (and a `note`) when nothing is to retry."""
        plan = retry_run(self.engine, run, statuses, max_output_tokens=max_output_tokens)
        record_estimates(self.engine, self._budget.current(), run)
        if send and plan.jobs:
            self._send(run)
        return plan

    def cancel(self, target: str) -> dict[int, str]:
        """Cancel a run (by name) or a job (by id); returns each job's outcome."""
        job_ids = job_ids_for(self.engine, target)
        provider_for = batch_provider_for(self.config)
        return cancel_jobs(self.engine, job_ids, base_url=self.base_url, provider_for=provider_for)

    def chat_batch(self, requests: Sequence[Any], **options: Any) -> list[Any]:
        """`ledger.chat_batch` on this ledger: answers in input order (see docs/python.md)."""
        from ledger.chat.batch import chat_batch

        url = self.engine.url.render_as_string(hide_password=False)
        given = {
            "config": self.config,
            "base_url": self.base_url,
            "poll_min": self.poll_min,
            "poll_max": self.poll_max,
        }
        return chat_batch(requests, db=url, **{**given, **options})

    def sql(self, query: str) -> QueryResult:
        """One read-only query (the same guard as `ledger sql`)."""
        return run_readonly_query(self.engine.url.render_as_string(hide_password=False), query)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, run: str) -> None:
        report = send_run(
            self.engine,
            run,
            base_url=self.base_url,
            poll_min=self.poll_min,
            provider_for=batch_provider_for(self.config),
            budget=self._budget,
        )
        self._check(report)

    def _defaults(self, command: str) -> dict[str, Any]:
        """`[defaults]` of the config file that apply to `command`, by parameter name."""
        return self.config.command_defaults().get(command, {})

    @staticmethod
    def _check(report: PassReport) -> PassReport:
        if report.paused:
            raise PauseLoop(report.paused)
        return report


def _first(given: Any, configured: Mapping[str, Any], name: str) -> Any:
    """`given` unless None, else the config file's value, else the built-in default."""
    if given is not None:
        return given
    return configured.get(name, settings.default(name))
