"""The provider registry: the built-in providers, providers another package adds through the
`ledger.providers` entry point group, and the reader of each provider's result lines."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from support.anthropicfiles import message
from support.batchfiles import DownloadedJob, downloaded_job, input_line, ok_line, read_jsonl

import adapters
from adapters.anthropic.lines import READER as ANTHROPIC_READER
from adapters.base import FatalError
from adapters.openai.lines import READER as OPENAI_READER
from adapters.registry import REGISTRY, get_provider, provider_names, result_reader
from ledger.config import batch_provider_for, load_config, submit_provider
from ledger.errors import InputError
from ledger.results.normalize import normalize_job

#: A provider package as a third party would write it: one factory with its own line reader
#: (lines `{"custom_id", "said"}`), one without.
PLUGIN = """
from adapters.fake import FakeProvider
from adapters.results import SUCCEEDED, Answer, Outcome, read_json_object

#: Every (base_url, api_key) the factory was called with.
CALLS = []


class AcmeLines:
    def parse_line(self, raw):
        custom_id, line = read_json_object(raw)
        return Outcome(custom_id, SUCCEEDED, 200, None, {"said": line["said"]}, None)

    def read_body(self, body, flags=0):
        return Answer(text=body["said"].upper(), finish_reason="stop")


class Acme:
    result_reader = AcmeLines()

    def __call__(self, base_url, api_key):
        CALLS.append((base_url, api_key))
        return FakeProvider(name="acme", base_url=base_url)


make_provider = Acme()


def make_plain(base_url, api_key):
    return FakeProvider(name="plain", base_url=base_url)
"""

ENTRY_POINTS = """\
[ledger.providers]
acme = acme_ledger:make_provider
plain = acme_ledger:make_plain
openai = acme_ledger:make_plain
broken = acme_ledger_missing:make_provider
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed-looking package: a module and its `*.dist-info/entry_points.txt` on
    sys.path (nothing installed, no network); the registry forgets it afterwards."""
    site = tmp_path / "site"
    dist_info = site / "acme_ledger-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-ledger\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "acme_ledger.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    REGISTRY.reload()
    yield site
    REGISTRY.reload()
    sys.modules.pop("acme_ledger", None)


def test_the_built_in_providers_and_their_line_readers() -> None:
    """openai and anthropic are registered; each job's lines are read by its provider's reader."""
    assert {"openai", "anthropic"} <= set(provider_names())
    assert provider_names() == sorted(REGISTRY)
    assert result_reader("openai") is OPENAI_READER
    assert result_reader("anthropic") is ANTHROPIC_READER
    assert adapters.REGISTRY is REGISTRY and adapters.get_provider is get_provider


def test_an_unknown_provider_is_an_input_error_naming_the_known_ones() -> None:
    """get_provider and result_reader refuse a name nobody registered, listing the known ones."""
    known = ", ".join(provider_names())
    with pytest.raises(InputError, match=rf"unknown provider 'nope' \(known: {known}\)"):
        get_provider("nope")
    with pytest.raises(InputError, match="unknown provider 'nope'"):
        result_reader("nope")


def test_a_built_in_takes_the_callers_key_else_its_usual_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """get_provider(..., api_key=) needs no environment; without a key the usual variable is
    read, and with neither the provider is refused as fatal."""
    assert get_provider("openai", "http://127.0.0.1:9/v1", api_key="sk-given").name == "openai"
    with pytest.raises(FatalError, match="OPENAI_API_KEY is not set"):
        get_provider("openai", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    assert get_provider("openai", "http://127.0.0.1:9/v1").base_url == "http://127.0.0.1:9/v1"


def test_an_entry_point_adds_a_provider_built_with_url_and_key(plugin: Path) -> None:
    """A package's `ledger.providers` entry point is a provider by its name; its module is
    imported only when the provider is first built, and gets (base_url, api_key)."""
    assert {"acme", "plain", "broken"} <= set(provider_names())
    assert "acme_ledger" not in sys.modules
    built = get_provider("acme", "http://127.0.0.1:9", api_key="sk-acme")
    assert (built.name, built.base_url) == ("acme", "http://127.0.0.1:9")
    assert sys.modules["acme_ledger"].CALLS == [("http://127.0.0.1:9", "sk-acme")]


def test_an_entry_point_names_its_line_reader_or_gets_openais(plugin: Path) -> None:
    """A factory's `result_reader` reads its lines; a factory without one has OpenAI's."""
    assert type(result_reader("acme")).__name__ == "AcmeLines"
    assert result_reader("plain") is OPENAI_READER


def test_an_entry_point_cannot_take_a_built_in_name(
    plugin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry point called `openai` is ignored with a warning once the entry points are read:
    the built-in stays."""
    assert type(REGISTRY["openai"]).__name__ == "OpenAIFactory"
    assert "plain" in provider_names()
    assert "entry point openai = acme_ledger:make_plain ignored" in caplog.text
    assert type(REGISTRY["openai"]).__name__ == "OpenAIFactory"
    assert result_reader("openai") is OPENAI_READER


def test_a_broken_entry_point_is_an_input_error_naming_it(plugin: Path) -> None:
    """An entry point whose module is missing is refused when used, naming what it points at."""
    with pytest.raises(InputError, match=r"provider 'broken': cannot load 'acme_ledger_missing"):
        get_provider("broken")


def test_a_job_of_an_entry_point_provider_is_normalized_by_its_reader(
    plugin: Path, engine: Engine, tmp_path: Path
) -> None:
    """normalize_job reads a job's lines with the reader of the job's provider column."""
    job: DownloadedJob = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b")],
        output=[{"custom_id": "a", "said": "hi"}, {"custom_id": "b", "said": "bye"}],
        provider="acme",
    )
    records = read_jsonl(normalize_job(engine, job.lease, job.job_id).results_path)
    assert [(r["status"], r["text"], r["finish_reason"]) for r in records] == [
        ("succeeded", "HI", "stop"),
        ("succeeded", "BYE", "stop"),
    ]


def test_the_same_lines_under_openai_are_read_as_openai_lines(
    engine: Engine, tmp_path: Path
) -> None:
    """A job of provider openai (at any compatible URL) reads OpenAI lines: a line shaped like
    Anthropic's is not taken for one (the provider column decides, not the line's shape)."""
    anthropic_shaped = {"custom_id": "b", "result": {"type": "succeeded", "message": message()}}
    job = downloaded_job(
        engine,
        tmp_path,
        [input_line("a"), input_line("b")],
        output=[ok_line("a", {"output": [], "status": "completed"}), anthropic_shaped],
    )
    records = read_jsonl(normalize_job(engine, job.lease, job.job_id).results_path)
    assert [r["status"] for r in records] == ["succeeded", "failed"]
    assert records[1]["error"]["code"] == "no_response"


def test_importing_adapters_loads_no_sdk() -> None:
    """`import adapters`, listing the providers and asking for their readers import neither
    the openai nor the anthropic SDK (their adapters load when a provider is built)."""
    probe = textwrap.dedent(
        """
        import sys
        import adapters
        from adapters.registry import provider_names, result_reader
        provider_names(); result_reader("openai"); result_reader("anthropic")
        print(sorted({m.split(".")[0] for m in sys.modules} & {"openai", "anthropic", "httpx2"}))
        """
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert shown.stdout.strip() == "[]"


def test_a_configured_entry_point_provider_gets_its_url_and_key_from_ledger_toml(
    plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[providers.acme] base_url and api_key_env reach the entry point's factory; the provider
    may batch without saying so, like a built-in."""
    Path("ledger.toml").write_text(
        '[providers.acme]\nbase_url = "http://127.0.0.1:9"\napi_key_env = "ACME_KEY"\n'
    )
    monkeypatch.setenv("ACME_KEY", "sk-acme-from-env")
    config = load_config()
    assert submit_provider(config, "acme") == "acme"
    assert batch_provider_for(config)("acme", None).base_url == "http://127.0.0.1:9"
    assert sys.modules["acme_ledger"].CALLS == [("http://127.0.0.1:9", "sk-acme-from-env")]


def test_a_built_in_is_found_without_reading_the_entry_points(
    plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Looking up a built-in reads no distribution's entry points; any other name reads them."""
    import importlib.metadata

    scans: list[str] = []
    real = importlib.metadata.entry_points

    def counted(**selection: str) -> Any:
        scans.append(selection["group"])
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", counted)
    assert result_reader("openai") is OPENAI_READER
    assert type(REGISTRY["anthropic"]).__name__ == "AnthropicFactory"
    assert scans == []
    assert type(result_reader("acme")).__name__ == "AcmeLines"
    assert scans == ["ledger.providers"]
