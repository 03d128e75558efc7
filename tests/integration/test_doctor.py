"""`ledger doctor` against the emulator: all ok, a refused key, a closed port, a missing key, a
database it cannot migrate; one line per check, exit code 1 on any failure, never the key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import text
from support.emulator_support import running

from cli import cli
from ledger.config import load_config
from ledger.core.db import alembic_config, open_ledger
from ledger.query.doctor import CheckResult, run_checks


def doctor(*args: str) -> tuple[int, list[str], str]:
    """`ledger doctor`: exit code, output lines, everything printed (stdout and stderr); an
    exception escaping the command fails the test."""
    result = CliRunner().invoke(cli, [*args, "doctor"])
    escaped = result.exception
    assert escaped is None or isinstance(escaped, SystemExit), repr(escaped)
    return result.exit_code, result.stdout.splitlines(), result.stdout + result.stderr


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_healthy_setup_is_all_ok(api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config: database, schema, tokenizer, openai chat and embeddings, each `ok`, exit 0."""
    with running() as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        code, lines, printed = doctor()
        assert code == 0, printed
        assert [line.split(":")[0] for line in lines] == [
            "ok database",
            "ok schema",
            "ok tokenizer",
            "ok openai chat",
            "ok openai embeddings",
        ]
        newest = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert f"at {newest}, the newest migration" in lines[1]
        assert "o200k_base loads offline" in lines[2]
        assert f"POST {emu.base_url}/chat/completions" in lines[3]
        assert api_key not in printed
        requests = emu.stats()["requests"]
        assert (requests["chat_completions"], requests["embeddings"]) == (1, 1)


def test_every_configured_provider_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ledger.toml: each provider's chat (Anthropic messages, OpenAI responses, a keyless
    compatible server) and embeddings where one is configured."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with running() as emu:
        Path("ledger.toml").write_text(
            f'[providers.openai]\nbase_url = "{emu.base_url}"\nchat_endpoint = "responses"\n\n'
            f'[providers.anthropic]\nbase_url = "{emu.url}"\n\n'
            f'[providers.local]\nbase_url = "{emu.base_url}"\nmodel = "llama3.2"\n'
            'embedding_model = "nomic-embed-text"\n'
        )
        code, lines, printed = doctor()
        assert code == 0, printed
        assert [line.split(":")[0] for line in lines[3:]] == [
            "ok openai chat",
            "ok openai embeddings",
            "ok anthropic chat",
            "ok local chat",
            "ok local embeddings",
        ]
        assert f"POST {emu.url}/v1/messages" in lines[5]
        assert "llama3.2 answered" in lines[6]
        requests = emu.stats()["requests"]
        assert (requests["responses"], requests["messages"], requests["chat_completions"]) == (
            1,
            1,
            1,
        )


def test_a_refused_key_fails_naming_401_without_the_key(
    api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator accepts another key: exit 1, FAIL lines naming 401, the key nowhere."""
    with running(api_key="sk-the-right-key-987654") as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        code, lines, printed = doctor()
        assert code == 1
        assert lines[:3] == [line for line in lines[:3] if line.startswith("ok ")]
        assert lines[3].startswith("FAIL openai chat: provider answered 401: ")
        assert lines[4].startswith("FAIL openai embeddings: provider answered 401: ")
        assert api_key not in printed and "LEAKCANARY" not in printed
        assert "sk-the-right-key-987654" not in printed
        assert "Traceback" not in printed


def test_a_closed_port_fails_on_one_line(api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening: exit 1, one FAIL line per provider check, no traceback."""
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    code, lines, printed = doctor()
    assert code == 1
    assert len(lines) == 5
    assert lines[3].startswith("FAIL openai chat: cannot reach http://127.0.0.1:")
    assert lines[4].startswith("FAIL openai embeddings: cannot reach http://127.0.0.1:")
    assert "Traceback" not in printed and api_key not in printed


def test_a_missing_key_fails_naming_the_variable(tmp_path: Path) -> None:
    """No key in the environment: the FAIL line names the variable to set."""
    Path("ledger.toml").write_text('[providers.openai]\napi_key_env = "MY_OPENAI_KEY"\n')
    code, lines, _ = doctor()
    assert code == 1
    assert lines[3] == ("FAIL openai chat: $MY_OPENAI_KEY is not set (the key of provider openai)")


def test_a_database_it_cannot_migrate_fails_on_one_line(
    tmp_path: Path, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger stamped with a revision this ledger does not know: FAIL database, no traceback."""
    engine = open_ledger(tmp_path / "ledger.db")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    with running() as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        code, lines, printed = doctor()
    assert code == 1
    assert lines[0].startswith(f"FAIL database: sqlite:///{tmp_path / 'ledger.db'}: ")
    assert "ffff" in lines[0]
    assert "Traceback" not in printed
    assert [line.split(":")[0] for line in lines[1:]] == [
        "ok tokenizer",
        "ok openai chat",
        "ok openai embeddings",
    ]


def test_the_library_returns_check_results(api_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_checks gives one CheckResult per check for the Python API."""
    with running() as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        results = run_checks(load_config(), None)
    assert all(isinstance(result, CheckResult) and result.ok for result in results)
    assert [result.name for result in results] == [
        "database",
        "schema",
        "tokenizer",
        "openai chat",
        "openai embeddings",
    ]
    assert CheckResult("x", False, "two\nlines").line() == "FAIL x: two lines"


def test_each_configured_batch_host_is_checked_without_printing_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compatible host in ledger.toml: its batch routes answer with its key (named by its
    variable, the key itself nowhere); a host without its key, or Azure without its endpoint,
    fails naming the variable."""
    key = "gsk-LEAKCANARY-0123456789"
    monkeypatch.setenv("GROQ_API_KEY", key)
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with running() as emu:
        Path("ledger.toml").write_text(
            f'[providers.groq]\nbase_url = "{emu.url}/groq/openai/v1"\n\n'
            f'[providers.xai]\nbase_url = "{emu.url}/xai/v1"\n\n'
            "[providers.azure]\n"
        )
        code, lines, printed = doctor()
        assert code == 1
        assert lines[3] == (
            f"ok groq batch: GET {emu.url}/groq/openai/v1/batches answered in "
            f"{lines[3].split(' answered in ')[1].split(' s ')[0]} s (key from $GROQ_API_KEY)"
        )
        assert lines[4] == "FAIL xai batch: $XAI_API_KEY is not set"
        assert lines[5] == (
            "FAIL azure batch: no base URL: $AZURE_OPENAI_ENDPOINT is not set, or set base_url "
            "in [providers.azure]"
        )
        assert key not in printed
        assert emu.stats()["batches"]["by_host"] == {}
        assert emu.stats()["requests"]["list_batches"] == 1
