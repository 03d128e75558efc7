"""A local, fault-injectable OpenAI Files + Batches API that the official SDK cannot tell from
the real service, plus synchronous chat, responses, embeddings and Anthropic messages routes.
See docs/emulator.md.

    from ledger.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(stage_seconds=0.05)).start() as emu:
        client = openai.OpenAI(api_key="sk-test", base_url=emu.base_url)
        ...
        emu.configure(scenario="expire")
        emu.stats()["batches"]["created"]
"""

from ledger.emulator.answers import answer_text, count_tokens, embedding_vector
from ledger.emulator.config import FAULT_KINDS, ROUTE_NAMES, SCENARIOS, EmulatorConfig, FaultRule
from ledger.emulator.scenarios import SCENARIO_HEADER, SCENARIO_METADATA_KEY
from ledger.emulator.server import Emulator, run_until_signalled

__all__ = [
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
