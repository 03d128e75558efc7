"""`ledger demo`: a whole batch lifecycle, offline, in under a minute.

It starts the built-in emulator in this process, submits a bundled set of prompts as three
batches, lets one batch expire part way (as real batches do when the 24 h window passes),
reconciles everything to normalized results, retries what expired, and shows the status, some
results and the SQL views. Everything lands in a fresh directory the user can explore afterwards.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from ledger.api import Ledger
from ledger.console import format_table
from ledger.emulator import Emulator, EmulatorConfig
from ledger.errors import InputError
from ledger.query.sql import run_readonly_query

RUN = "demo"
#: The emulator's clock: seconds per lifecycle stage (validating, in progress, finalizing).
STAGE_SECONDS = 0.3


def demo_input() -> Path:
    """The bundled prompts (24 rows of `{"id", "prompt"}`)."""
    return Path(str(resources.files("ledger").joinpath("data", "demo_prompts.jsonl")))


#: Providers the demo can play, with the key variable each reads.
PROVIDERS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
    "groq": "GROQ_API_KEY",
    "together": "TOGETHER_API_KEY",
    "xai": "XAI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "gemini": "GEMINI_API_KEY",
}

#: Where the emulator serves each OpenAI-compatible host (ledger/emulator/hosts.py).
HOST_PREFIXES = {
    "azure": "/azure/openai/v1",
    "groq": "/groq/openai/v1",
    "together": "/together/v1",
    "xai": "/xai/v1",
    "mistral": "/mistral/v1",
}

#: The model and endpoint each provider's demo run asks for, where not OpenAI's.
DEMO_REQUESTS = {
    "anthropic": ("claude-3-5-haiku-latest", "chat"),
    "gemini": ("gemini-2.5-flash", "chat"),
    "mistral": ("mistral-small-latest", "chat"),
}


@contextmanager
def _demo_keys() -> Iterator[None]:
    # The emulator takes any key; never send the user's real one anywhere, even to loopback.
    saved = {name: os.environ.get(name) for name in PROVIDERS.values()}
    os.environ.update({name: "sk-ledger-demo" for name in PROVIDERS.values()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo(
    directory: Path | None = None,
    echo: Callable[[str], None] = print,
    provider: str = "openai",
) -> Path:
    """Run the demo in `directory` (a new temporary one by default) against the emulator's
    `provider` API (OpenAI Batch or Anthropic Message Batches) and return the directory."""
    if provider not in PROVIDERS:
        raise InputError(f"the demo plays {' or '.join(PROVIDERS)}, not {provider!r}")
    workdir = directory or Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "ledger.db"
    config = EmulatorConfig(
        stage_seconds=STAGE_SECONDS,
        # Job 2's batch expires half way: its finished requests keep their results. (OpenAI
        # batches are matched by their input file's name, Anthropic's by their first request.)
        scenario_rules=[
            {"file_name_contains": "ledger-job2-", "scenario": "expire"},
            {"file_name_contains": "q09", "scenario": "expire"},
        ],
    )
    with _demo_keys(), Emulator(config).start() as emulator:
        # The Anthropic SDK adds /v1 itself; the OpenAI one expects it in the base URL.
        base_url = emulator.url if provider == "anthropic" else emulator.base_url
        api = "Anthropic Message Batches" if provider == "anthropic" else "OpenAI Batch"
        if provider in HOST_PREFIXES:
            base_url, api = emulator.url + HOST_PREFIXES[provider], f"{provider} (OpenAI-style)"
        if provider == "mistral":
            api = "Mistral Batch"
        if provider == "gemini":  # the google-genai SDK adds /v1beta itself
            base_url, api = emulator.url, "Gemini Batch Mode"
        echo(f"1. The {api} API emulator answers at {base_url}")
        ledger = Ledger.open(database, base_url=base_url, poll_min=0.2, poll_max=0.5)
        with ledger:
            # Anthropic, Mistral and Gemini batches take chat-style requests; OpenAI's default
            # is the Responses API.
            model, endpoint = DEMO_REQUESTS.get(provider, ("gpt-4o-mini", "responses"))
            echo(
                f"\n2. ledger submit {demo_input().name} --provider {provider} --model {model} "
                f"--endpoint {endpoint} --max-requests 8"
            )
            plan = ledger.submit(
                demo_input(),
                run=RUN,
                provider=provider,
                model=model,
                endpoint=endpoint,
                max_requests=8,
                max_output_tokens=120,
                workdir=workdir,
            )
            tagged = (
                "each request's custom_id carries the job's token"
                if provider == "anthropic"
                else "each batch's file name and metadata carry the job's tag"
            )
            if provider == "gemini":
                tagged = "each request file's and batch's display name carry the job's tag"
            echo(
                f"   {len(plan.jobs)} batches of {plan.request_count} requests uploaded and "
                f"created; {tagged}"
            )
            echo("\n3. ledger reconcile --until-done (polling, downloading, normalizing)")
            ledger.reconcile(run=RUN, until_done=True, timeout=60, interval=0.1)
            _show_status(ledger, echo)

            emulator.configure(scenario_rules=[])  # the provider's next batches run normally
            [run] = ledger.status(RUN)
            if run["request_statuses"].get("expired"):
                echo("\n4. ledger retry demo: a new job for what expired, nothing else is resent")
                retry = ledger.retry(RUN, ["expired"])
                echo(f"   job {retry.jobs[0][0]} carries {retry.request_count} request(s)")
                ledger.reconcile(run=RUN, until_done=True, timeout=60, interval=0.1)
                _show_status(ledger, echo)
            else:  # Azure: a batch past its window is never expired, it runs on
                echo("\n4. nothing expired: this host runs a late batch on instead")

            echo("\n5. ledger results demo (one result per input row, in input order)")
            for result in list(ledger.results(RUN))[:4]:
                echo(f"   {result.custom_id} {result.status}: {(result.text or '')[:70]}")

            query = (
                "SELECT run_name, jobs, jobs_normalized, requests_succeeded, requests_not_run, "
                "input_tokens, output_tokens, cost_usd FROM run_progress"
            )
            echo(f'\n6. ledger sql "{query}"')
            table = run_readonly_query(f"sqlite:///{database}", query)
            echo(_indent(format_table(table.columns, table.rows)))
            history = (
                "SELECT job_id, from_state, to_state, round(seconds_in_previous_state, 2) AS secs "
                "FROM job_history WHERE job_id = 2 ORDER BY event_id"
            )
            echo(f'\n   ledger sql "{history}"')
            table = run_readonly_query(f"sqlite:///{database}", history)
            echo(_indent(format_table(table.columns, table.rows)))
        stats = emulator.stats()
    if provider == "anthropic":
        created = stats["message_batches"]["created"]
        echo(f"\nThe emulator created {created} message batches: one per job.")
    elif provider == "gemini":
        gemini = stats["gemini"]
        echo(
            f"\nThe emulator created {gemini['batches_created']} batches (one per job) and "
            f"{gemini['files_uploaded']} uploaded request files (a job under 20 MB sends its "
            "requests inline)."
        )
    else:
        echo(
            f"\nThe emulator created {stats['batches']['created']} batches and "
            f"{stats['files']['created']} input files: one of each per job."
        )
    echo(f"Explore it: ledger --db {database} status   (or history, show 2, sql, results demo)")
    return workdir


def _show_status(ledger: Ledger, echo: Callable[[str], None]) -> None:
    [run] = ledger.status(RUN)
    states = ", ".join(f"{n} {s}" for s, n in sorted(run["job_states"].items()))
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(run["request_statuses"].items()))
    echo(f"   jobs: {states}; requests: {statuses}; cost ${run['cost_usd']:.6f}")


def _indent(text: str) -> str:
    return "\n".join(f"   {line}" for line in text.splitlines())
