"""Running out of money on Gemini and Mistral: the refusal reaches the reconciler as
QuotaExhausted (which pauses the provider, tests/integration/test_spend_caps.py), while a plain
rate limit stays a retryable TransientError. Driven through each real SDK against the emulator's
`insufficient_quota` and `http_429` faults on their create routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.base import QuotaExhausted, TransientError
from adapters.gemini.batch import GeminiBatchProvider
from adapters.gemini.quota import quota_reason
from adapters.mistral.batch import MistralBatchProvider
from adapters.mistral.quota import quota_words
from ledger.emulator import Emulator, EmulatorConfig

CHAT = "/v1/chat/completions"


def shard(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "shard-0001.jsonl"
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "hi"}}]}}'
    path.write_text(f'{{"custom_id": "a", "method": "POST", "url": "{CHAT}", "body": {body}}}\n')
    return path


@pytest.mark.parametrize(("kind", "expected"), [("insufficient_quota", QuotaExhausted),
                                                ("http_429", TransientError)])  # fmt: skip
def test_gemini_quota_pauses_and_rate_limits_retry(
    tmp_path: Path, kind: str, expected: type[Exception]
) -> None:
    """Gemini's 429 RESOURCE_EXHAUSTED with a per-day QuotaFailure is QuotaExhausted; the same
    status with a per-minute quota is rate limiting (TransientError, its retry time kept)."""
    faults = [{"kind": kind, "route": "gemini_create_batch", "seconds": 2}]
    with Emulator(EmulatorConfig(faults=faults)).start() as emu:
        provider = GeminiBatchProvider(base_url=emu.url, api_key="AIza-x", inline_max_bytes=0)
        remote = provider.upload_input(shard(tmp_path, "gemini-2.5-flash"), filename="j.jsonl")
        with pytest.raises(expected) as raised:
            provider.create_batch(
                input_file_id=remote.id, endpoint=CHAT, metadata={"ledger_token": "t"}
            )
    if expected is QuotaExhausted:
        assert "GenerateRequestsPerDayPerProjectPerModel exhausted" in str(raised.value)
    assert not isinstance(raised.value, QuotaExhausted) or expected is QuotaExhausted


@pytest.mark.parametrize(("kind", "expected"), [("insufficient_quota", QuotaExhausted),
                                                ("http_429", TransientError)])  # fmt: skip
def test_mistral_quota_pauses_and_rate_limits_retry(
    tmp_path: Path, kind: str, expected: type[Exception]
) -> None:
    """Mistral's 429 naming the quota or billing is QuotaExhausted; a rate limit's is not."""
    faults = [{"kind": kind, "route": "create_batch", "seconds": 1}]
    with Emulator(EmulatorConfig(faults=faults)).start() as emu:
        provider = MistralBatchProvider(base_url=emu.url + "/mistral/v1", api_key="mistral-x")
        remote = provider.upload_input(shard(tmp_path, "mistral-small-latest"), filename="j.jsonl")
        with pytest.raises(expected) as raised:
            provider.create_batch(
                input_file_id=remote.id, endpoint=CHAT, metadata={"ledger_token": "t"}
            )
    assert isinstance(raised.value, QuotaExhausted) == (expected is QuotaExhausted)


def test_the_error_details_decide_not_the_words() -> None:
    """Google words per-minute limits and spent quotas alike; only the details tell them apart.
    Billing disabled (ErrorInfo) and a quota of 0 are the account's."""
    words = "You exceeded your current quota, please check your plan and billing details."

    def body(*details: dict[str, object]) -> dict[str, object]:
        return {"error": {"code": 429, "message": words, "details": list(details)}}

    def quota(quota_id: str, value: str = "15") -> dict[str, object]:
        violation = {"quotaId": quota_id, "quotaValue": value}
        return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}

    assert quota_reason(body(quota("GenerateRequestsPerMinutePerProjectPerModel"))) is None
    assert quota_reason(body()) is None and quota_reason(None) is None
    assert quota_reason(body(quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier")))
    assert quota_reason(body(quota("GenerateContentInputTokensPerModelPerMinute", "0")))
    billing: dict[str, object] = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "BILLING_DISABLED",
    }
    assert quota_reason(body(billing)) == "billing (BILLING_DISABLED)"
    assert quota_words('{"message": "Monthly usage limit exceeded"}')
    assert not quota_words('{"message": "Requests rate limit exceeded"}')
