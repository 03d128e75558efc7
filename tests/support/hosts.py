"""The OpenAI-compatible batch hosts as tests drive them: each one's provider name, key variable
and path prefix on the emulator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class HostCase:
    provider: str
    key_env: str
    prefix: str

    def base_url(self, emulator: Any) -> str:
        """The host's OpenAI-compatible root on the emulator."""
        return emulator.url + self.prefix

    def key(self) -> str:
        """A recognisable key, to prove it is never stored."""
        return f"{self.provider}-LEAKCANARY-0123456789"


HOST_CASES = [
    HostCase("azure", "AZURE_OPENAI_API_KEY", "/azure/openai/v1"),
    HostCase("groq", "GROQ_API_KEY", "/groq/openai/v1"),
    HostCase("together", "TOGETHER_API_KEY", "/together/v1"),
    HostCase("xai", "XAI_API_KEY", "/xai/v1"),
]


def files_holding(folder: Path, text: str) -> list[Path]:
    """Every file under `folder` whose bytes contain `text`."""
    needle = text.encode()
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]
