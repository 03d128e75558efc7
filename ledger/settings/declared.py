"""Every setting, declared once: the one place to add a setting or change its default, help or
range (docs/config.md's table is generated from here: `python docs/cli_reference.py`)."""

from __future__ import annotations

from ledger.settings.setting import Range, Setting

#: The OpenAI Batch API's limits per batch (ledger.build.shards holds them; a test keeps these
#: equal, so that the settings need not import the build).
MAX_REQUESTS_PER_BATCH = 50_000
MAX_BYTES_PER_BATCH = 200_000_000

_SUBMIT = ("submit",)
_RECONCILE = ("reconcile",)
_POLL_MIN_IN = ("submit", "send", "retry", "reconcile")
_AT_LEAST_1 = Range(1)
_NOT_NEGATIVE = Range(0)

SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting(
            "provider",
            "str",
            "openai",
            "Batch provider the jobs go to: openai, anthropic or any registered adapter; "
            "recorded on the run and its jobs.",
            _SUBMIT,
            metavar="NAME",
        ),
        Setting(
            "model",
            "str",
            None,
            "Model for rows that name none (ready lines name their own): MODEL for --provider, "
            "or PROVIDER:MODEL (anthropic:claude-haiku-4-5). Give it again to send every row "
            "to each model in one run.",
            _SUBMIT,
            metavar="[PROVIDER:]MODEL",
            multiple=True,
        ),
        Setting(
            "endpoint",
            "str",
            None,
            "Batch endpoint.",
            _SUBMIT,
            metavar="responses|chat|embeddings|completions|moderations",
            default_text="responses, or the url of ready lines",
        ),
        Setting(
            "system",
            "str",
            None,
            "System prompt, or @FILE to read it from.",
            _SUBMIT,
            metavar="TEXT|@FILE",
        ),
        Setting(
            "max_output_tokens",
            "int",
            None,
            "Output token limit of every request (rows may set their own).",
            _SUBMIT,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "temperature",
            "float",
            None,
            "Sampling temperature (rows may set their own).",
            _SUBMIT,
            accepts=Range(0, 2),
        ),
        Setting(
            "json",
            "bool",
            False,
            "JSON mode (json_object output).",
            _SUBMIT,
            field="json_mode",
        ),
        Setting(
            "json_schema",
            "path",
            None,
            "Structured output: a JSON Schema file, or one holding {name, schema, strict}.",
            _SUBMIT,
        ),
        Setting(
            "max_requests",
            "int",
            MAX_REQUESTS_PER_BATCH,
            "Requests per job, at most the Batch API's 50,000.",
            _SUBMIT,
            accepts=Range(1, MAX_REQUESTS_PER_BATCH),
        ),
        Setting(
            "max_bytes",
            "size",
            MAX_BYTES_PER_BATCH,
            "Bytes per job file, at most 200 MB: 200000000, 150MB or 64MiB.",
            _SUBMIT,
            metavar="SIZE",
            accepts=Range(1, MAX_BYTES_PER_BATCH),
        ),
        Setting(
            "max_tokens_per_job",
            "int",
            None,
            "Estimated input tokens per job at most (keep each batch under the enqueued-token "
            "limit).",
            _SUBMIT,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "max_context",
            "int",
            None,
            "Refuse requests whose estimated input plus output tokens exceed this.",
            _SUBMIT,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "output_expires_after",
            "int",
            None,
            "Seconds the provider keeps each batch's result files (OpenAI's "
            "`output_expires_after`, 1 hour to 30 days); fetch results before then.",
            _SUBMIT,
            metavar="SECONDS",
            accepts=Range(3600, 30 * 24 * 3600),
            default_text="the provider's (OpenAI: 30 days)",
        ),
        Setting(
            "count_tokens",
            "bool",
            True,
            "Estimate input tokens (tiktoken), for the token limits and the cost.",
            _SUBMIT,
            flag="--count-tokens/--no-count-tokens",
        ),
        Setting(
            "reuse",
            "bool",
            False,
            "Answer a request whose body already succeeded in any run of this ledger with that "
            "answer instead of sending it, and send identical requests of the run once "
            "(docs/reuse.md).",
            _SUBMIT,
            flag="--reuse/--no-reuse",
        ),
        Setting(
            "count_claude_tokens",
            "bool",
            False,
            "Count Claude input tokens with Anthropic's token-counting endpoint, one call per "
            "request (else approximated, and shown so).",
            _SUBMIT,
            flag="--count-claude-tokens/--no-count-claude-tokens",
        ),
        Setting(
            "count_gemini_tokens",
            "bool",
            False,
            "Count Gemini input tokens with Google's countTokens endpoint, one call per request "
            "(else approximated, and shown so).",
            _SUBMIT,
            flag="--count-gemini-tokens/--no-count-gemini-tokens",
        ),
        Setting(
            "workdir",
            "path",
            None,
            "Where runs/ goes.",
            _SUBMIT,
            default_text="the SQLite ledger's directory, else the current one",
        ),
        Setting(
            "prices",
            "path",
            None,
            "Price table overriding or adding to the packaged one.",
            _SUBMIT,
            env="LEDGER_PRICES",
        ),
        Setting(
            "max_cost",
            "float",
            None,
            "USD this run may cost at most: a batch is created only while the run's actual "
            "cost plus the estimates in flight plus its own estimate stay under it.",
            _SUBMIT,
            metavar="USD",
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "interval",
            "float",
            5.0,
            "Seconds between passes when nothing is due sooner (--loop, --until-done).",
            _RECONCILE,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "poll_min",
            "float",
            10.0,
            "Seconds from a batch's creation, or a change of its state, to its next poll.",
            _POLL_MIN_IN,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "poll_max",
            "float",
            120.0,
            "Longest wait between polls, in seconds (each unchanged answer multiplies the wait "
            "by 1.5).",
            _RECONCILE,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "concurrency",
            "int",
            16,
            "Jobs this process steps at once.",
            _RECONCILE,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "max_enqueued_tokens",
            "int",
            None,
            "Hold jobs back so the estimated prompt tokens in flight per (provider, account, "
            "model) stay under this, across every reconciler (over the model table's limit at "
            "[budget] queue_tier; [budget] enqueued_tokens wins).",
            _RECONCILE,
            accepts=_AT_LEAST_1,
        ),
        Setting(
            "not_found_grace",
            "float",
            600.0,
            "Seconds a new batch may answer 404 before 404s count toward declaring it gone.",
            _RECONCILE,
            accepts=_NOT_NEGATIVE,
        ),
        Setting(
            "lease_seconds",
            "float",
            900.0,
            "Seconds a claim on a job lasts; longer than the slowest provider call.",
            _RECONCILE,
            accepts=Range(0, above=True),
        ),
    )
}
