"""ledger.toml: finding it, [defaults] applied to submit, unknown keys refused, and the provider
factory (batch adapter and chat client; api_key_env, chat_endpoint, max_context_tokens)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from support.buildkit import prompts, query, shard_lines, submit, write_jsonl
from support.emulator_support import running

from adapters.anthropic.chat import AnthropicChatClient
from adapters.base import FatalError
from adapters.openai.chat import OpenAIChatClient
from cli import cli
from ledger.chat.types import ChatRequest, ContextTooLong
from ledger.config import (
    MissingAPIKey,
    batch_provider,
    batch_provider_for,
    chat_client,
    load_config,
    provider_settings,
)
from ledger.emulator import answer_text
from ledger.errors import InputError


def write_config(text: str, path: str | Path = "ledger.toml") -> Path:
    """A config file with `text`."""
    target = Path(path)
    target.write_text(text, encoding="utf-8")
    return target


def test_no_file_means_builtin_settings() -> None:
    """Without a file: no defaults, the OpenAI provider from its usual environment variables."""
    config = load_config()
    assert config.path is None and config.defaults == {} and config.provider_names() == ["openai"]
    openai = provider_settings(config)
    assert (openai.name, openai.kind, openai.api_key_env) == ("openai", "openai", "OPENAI_API_KEY")
    assert openai.batch
    assert provider_settings(config, "anthropic").api_key_env == "ANTHROPIC_API_KEY"
    with pytest.raises(InputError, match=r"unknown provider 'ollama': add a \[providers.ollama\]"):
        provider_settings(config, "ollama")


def test_defaults_apply_to_submit_and_the_command_line_wins(tmp_path: Path) -> None:
    """[defaults] model, endpoint, max_output_tokens and max_requests shape the build; an
    option given on the command line overrides its default."""
    write_config(
        '[defaults]\nmodel = "gpt-4o"\nendpoint = "chat"\nmax_output_tokens = 50\n'
        "max_requests = 1\n"
    )
    write_jsonl("rows.jsonl", prompts(2))
    result = submit("rows.jsonl", "--dry-run")
    assert result.exit_code == 0, result.output
    jobs = query("select model, endpoint from jobs order by id")
    assert jobs == [{"model": "gpt-4o", "endpoint": "/v1/chat/completions"}] * 2
    [[first], [_]] = shard_lines("rows")
    assert first["body"]["max_completion_tokens"] == 50
    result = submit("rows.jsonl", "--run", "other", "--model", "gpt-4o-mini", "--max-requests", "5")
    assert result.exit_code == 0, result.output
    assert query("select model from jobs where id > 2") == [{"model": "gpt-4o-mini"}]


def test_config_option_and_environment_variable_name_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config FILE, else $LEDGER_CONFIG, else ./ledger.toml; relative paths in the file are
    relative to the file."""
    (tmp_path / "conf").mkdir()
    write_config('[defaults]\nmodel = "from-local"\n')
    write_config('[defaults]\nmodel = "from-option"\nworkdir = "work"\n', "conf/a.toml")
    write_config('[defaults]\nmodel = "from-env"\n', "conf/b.toml")
    write_jsonl("rows.jsonl", prompts(1))
    args = ["--no-count-tokens", "--dry-run"]
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", "conf/a.toml", "submit", "rows.jsonl", *args])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "conf" / "work" / "runs" / "rows").is_dir()
    monkeypatch.setenv("LEDGER_CONFIG", str(tmp_path / "conf" / "b.toml"))
    assert submit("rows.jsonl", "--run", "b", *args).exit_code == 0
    monkeypatch.delenv("LEDGER_CONFIG")
    assert submit("rows.jsonl", "--run", "c", *args).exit_code == 0
    models = [row["model"] for row in query("select model from runs order by id")]
    assert models == ["from-option", "from-env", "from-local"]


BAD_FILES = {
    "unknown default": ('[defaults]\nmodle = "gpt-4o"\n', "unknown key 'defaults.modle'"),
    "unknown provider key": (
        '[providers.openai]\nbase_ulr = "http://x"\n',
        "unknown key 'providers.openai.base_ulr'",
    ),
    "unknown table": ('[default]\nmodel = "x"\n', "unknown key 'default'"),
    "a key in the file": (
        '[providers.openai]\napi_key = "sk-secret-123456"\n',
        "providers.openai.api_key: keys never live in the config file",
    ),
    "wrong type": ('[defaults]\nmax_requests = "ten"\n', "defaults.max_requests: expected an"),
    "bool for a number": ("[defaults]\ntemperature = true\n", "defaults.temperature: expected"),
    "bad kind": ('[providers.x]\nkind = "cohere"\n', "providers.x.kind: 'cohere' is not one of"),
    "bad limit": (
        '[providers.openai]\nmax_context_tokens = {"gpt-4o" = 0}\n',
        "providers.openai.max_context_tokens.gpt-4o: expected a whole number",
    ),
    "bad chat endpoint": (
        '[providers.openai]\nchat_endpoint = "completions"\n',
        "providers.openai.chat_endpoint: 'completions'",
    ),
    "not toml": ("[defaults\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
def test_a_bad_file_is_one_line_naming_the_file_and_key(tmp_path: Path, case: str) -> None:
    """Unknown keys, secrets, wrong types and bad TOML: exit 2, one line, file and key named."""
    text, message = BAD_FILES[case]
    write_config(text)
    write_jsonl("rows.jsonl", prompts(1))
    result = submit("rows.jsonl", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ledger.toml: ")
    assert message in result.stderr
    assert "sk-secret-123456" not in result.stderr
    assert not (tmp_path / "ledger.db").exists()


def test_a_missing_config_file_named_on_the_command_line_is_refused() -> None:
    """--config naming no file is an error, not silently no settings."""
    result = CliRunner().invoke(cli, ["--config", "nope.toml", "status"])
    assert result.exit_code == 2 and "nope.toml: no such config file" in result.stderr


def test_api_key_env_names_the_variable_holding_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chat client reads the key from api_key_env, not OPENAI_API_KEY; unset, it says so."""
    with running(api_key="sk-right") as emu:
        write_config(
            f'[providers.openai]\nbase_url = "{emu.base_url}"\nmodel = "gpt-4o-mini"\n'
            'api_key_env = "MY_LEDGER_KEY"\n'
        )
        settings = provider_settings(load_config())
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        with pytest.raises(MissingAPIKey, match=r"^\$MY_LEDGER_KEY is not set"):
            chat_client(settings)
        monkeypatch.setenv("MY_LEDGER_KEY", "sk-right")
        result = chat_client(settings, max_retries=0).chat(ChatRequest.prompt("hi"))
        assert result.text == answer_text("hi") and result.provider == "openai"


def test_the_factory_builds_each_kind_of_chat_client() -> None:
    """anthropic -> the Anthropic client; any other name speaks OpenAI's protocol, keyless when
    it names no api_key_env, through chat_endpoint."""
    with running() as emu:
        write_config(
            f'[providers.anthropic]\nbase_url = "{emu.url}"\nmodel = "claude-haiku-4-5"\n'
            'api_key_env = "ANTHROPIC_TEST_KEY"\n\n'
            f'[providers.local]\nbase_url = "{emu.base_url}"\nmodel = "llama3.2"\n'
            'chat_endpoint = "responses"\nbatch = false\n'
        )
        config = load_config()
        assert config.provider_names() == ["anthropic", "local"]
        with pytest.raises(MissingAPIKey):
            chat_client(provider_settings(config, "anthropic"))
        local = chat_client(provider_settings(config, "local"), max_retries=0)
        assert isinstance(local, OpenAIChatClient)
        answer = local.chat(ChatRequest.prompt("hello"))
        assert (answer.text, answer.model, answer.provider) == (
            answer_text("hello"),
            "llama3.2",
            "local",
        )
        assert emu.stats()["requests"]["responses"] == 1


def test_the_factory_passes_anthropic_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """An anthropic section gives an Anthropic client with its base URL and model."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with running() as emu:
        write_config(f'[providers.anthropic]\nbase_url = "{emu.url}"\nmodel = "claude-x"\n')
        client = chat_client(provider_settings(load_config(), "anthropic"), max_retries=0)
        assert isinstance(client, AnthropicChatClient)
        assert client.chat(ChatRequest.prompt("hi")).model == "claude-x"
        assert emu.stats()["requests"]["messages"] == 1


def test_max_context_tokens_from_the_file_refuse_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """[providers.X] max_context_tokens = {model = N} reaches the client: too long is refused
    and the emulator never hears of it."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with running() as emu:
        write_config(
            f'[providers.openai]\nbase_url = "{emu.base_url}"\nmodel = "gpt-4o-mini"\n'
            'max_context_tokens = {"gpt-4o-mini" = 30}\n'
        )
        client = chat_client(provider_settings(load_config()), max_retries=0)
        with pytest.raises(ContextTooLong):
            client.chat(ChatRequest.prompt("word " * 40))
        assert emu.stats()["requests"]["chat_completions"] == 0
        assert client.chat(ChatRequest.prompt("short")).text == answer_text("short")


def test_batch_adapters_come_from_the_registry_at_the_configured_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """batch_provider uses the configured base URL; a job's own URL wins in the reconciler's
    factory; batch = false and unregistered names are refused."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    write_config(
        '[providers.openai]\nbase_url = "http://127.0.0.1:9/v1"\n\n'
        '[providers.local]\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    config = load_config()
    assert batch_provider(provider_settings(config)).base_url == "http://127.0.0.1:9/v1"
    build = batch_provider_for(config)
    assert build("openai", None).base_url == "http://127.0.0.1:9/v1"
    assert build("openai", "http://127.0.0.1:8/v1").base_url == "http://127.0.0.1:8/v1"
    with pytest.raises(InputError, match="provider 'local' has no batch adapter"):
        batch_provider(provider_settings(config, "local"))
    write_config("[providers.openai]\nbatch = false\n")
    with pytest.raises(InputError, match="configured with batch = false"):
        batch_provider(provider_settings(load_config()))


def test_batch_adapters_get_the_key_their_api_key_env_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The factory hands a batch adapter the key from the provider's api_key_env, not from
    OPENAI_API_KEY; with that variable unset the provider is refused as fatal, naming it."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one")
    with running(api_key="sk-mine") as emu:
        write_config(f'[providers.openai]\napi_key_env = "MY_KEY"\nbase_url = "{emu.base_url}"\n')
        config = load_config()
        with pytest.raises(
            FatalError, match=r"^\$MY_KEY is not set \(the key of provider openai\)"
        ):
            batch_provider(provider_settings(config))
        with pytest.raises(FatalError, match=r"^\$MY_KEY is not set"):
            batch_provider_for(config)("openai", None)
        monkeypatch.setenv("MY_KEY", "sk-mine")
        assert batch_provider(provider_settings(config)).find_uploads("none.jsonl") == []
        assert batch_provider_for(config)("openai", None).find_uploads("none.jsonl") == []
        assert emu.stats()["requests"]["list_files"] == 2


def test_defaults_reach_reconcile_options_too() -> None:
    """[defaults] keys are routed to their command's option names (json -> submit's json_mode,
    interval -> reconcile's --interval, shown as its default)."""
    write_config("[defaults]\njson = true\ninterval = 7.5\nconcurrency = 3\n")
    config = load_config()
    assert config.command_defaults() == {
        "submit": {"json_mode": True},
        "reconcile": {"interval": 7.5, "concurrency": 3},
    }
    result = CliRunner().invoke(cli, ["reconcile", "--help"])
    assert result.exit_code == 0 and "[default: 7.5;" in " ".join(result.stdout.split())
