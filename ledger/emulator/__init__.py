"""A local, fault-injectable OpenAI Files + Batches API (and Anthropic Message Batches API) that
the official SDKs cannot tell from the real services, plus synchronous chat, responses, embeddings
and Anthropic messages routes. See docs/emulator.md.

    from ledger.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(stage_seconds=0.05)).start() as emu:
        client = openai.OpenAI(api_key="sk-test", base_url=emu.base_url)
        ...
        emu.configure(scenario="expire")
        emu.stats()["batches"]["created"]
"""

from ledger.emulator.config import (
    ANTHROPIC_ROUTE_NAMES,
    FAULT_KINDS,
    ROUTE_NAMES,
    SCENARIOS,
    EmulatorConfig,
    FaultRule,
)
from ledger.emulator.echo import answer_text, count_tokens
from ledger.emulator.embedding_answers import embedding_vector
from ledger.emulator.scenarios import SCENARIO_HEADER, SCENARIO_METADATA_KEY
from ledger.emulator.server import Emulator, run_until_signalled

__all__ = [
    "ANTHROPIC_ROUTE_NAMES",
    "FAULT_KINDS",
    "ROUTE_NAMES",
    "SCENARIOS",
    "SCENARIO_HEADER",
    "SCENARIO_METADATA_KEY",
    "Emulator",
    "EmulatorConfig",
    "FaultRule",
    "answer_text",
    "count_tokens",
    "embedding_vector",
    "run_until_signalled",
]
