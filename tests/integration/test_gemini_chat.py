"""The Gemini chat client, `count_tokens` and `ledger doctor`'s gemini check, with the real
`google-genai` SDK over HTTP against the emulator; a refused key is named without the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from support.emulator_support import running

from adapters.chat_types import ChatRequest, ProviderStatusError
from adapters.gemini.chat import GeminiChatClient
from cli import cli

KEY = "AIzaSy-LEAKCANARY-gemini-chat-0123456789"


def test_a_chat_call_answers_with_text_usage_and_finish_reason() -> None:
    """generateContent: the echo, `stop`, the provider's token counts; count_tokens agrees."""
    with running() as emu:
        client = GeminiChatClient(api_key=KEY, base_url=emu.url, model="gemini-2.5-flash")
        request = ChatRequest.prompt("Reply with OK.", system="Be short.", max_output_tokens=16)
        answer = client.chat(request)
        assert (answer.text, answer.finish_reason) == ("Echo: Reply with OK.", "stop")
        assert answer.usage.input_tokens == 4 and answer.usage.output_tokens == 6
        assert answer.model == "gemini-2.5-flash" and answer.provider == "gemini"
        assert client.count_tokens(request) == answer.usage.input_tokens
        assert client.url == f"{emu.url}/v1beta/models/gemini-2.5-flash:generateContent"
        assert emu.stats()["requests"]["gemini_generate_content"] == 1


def test_a_refused_key_is_a_status_error_without_the_key() -> None:
    """The emulator holds another key: 400 API key not valid, and the key is not in the text."""
    with running(api_key="AIza-the-right-one") as emu:
        client = GeminiChatClient(api_key=KEY, base_url=emu.url, model="gemini-2.5-flash")
        with pytest.raises(ProviderStatusError, match="API key not valid") as refused:
            client.chat(ChatRequest.prompt("hi"))
        assert KEY not in str(refused.value)


def test_doctor_checks_a_configured_gemini_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[providers.gemini] with the emulator's URL: `ok gemini chat`, the key read from
    GOOGLE_API_KEY when GEMINI_API_KEY is unset, and never printed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with running() as emu:
        monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
        Path("ledger.toml").write_text(f'[providers.gemini]\nbase_url = "{emu.url}"\n')
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "l.db"), "doctor"])
        assert result.exit_code == 0, result.output
        [line] = [line for line in result.output.splitlines() if "gemini" in line]
        assert line.startswith("ok gemini chat: gemini-2.5-flash-lite answered POST ")
        assert KEY not in result.output
