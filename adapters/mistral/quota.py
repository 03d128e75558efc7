"""Which Mistral refusals are the account's quota or billing (pause the provider:
QuotaExhausted) rather than rate limiting (retry later).

Mistral documents no error code for it. What users meet (vanna-ai/vanna #177: "my monthly usage
limit had reached on the platform") is a 429 like a rate limit's, so the body's words decide: a
429 naming the usage limit, a quota, credit or billing is the account's; "rate limit exceeded"
or "capacity exceeded" stays a rate limit. A 402 (payment required) is always the account's.
"""

from __future__ import annotations

#: Words of a 429 body that mean the account, not the rate.
QUOTA_WORDS = ("usage limit", "quota", "credit", "billing", "payment")


def quota_words(body: str | None) -> bool:
    """Whether a 429 answer's body says the account is out of quota or credit."""
    text = (body or "").lower()
    return any(word in text for word in QUOTA_WORDS)
