"""Which Gemini refusals are the account's quota or billing (pause the provider: QuotaExhausted)
and which are plain rate limiting (retry later).

Gemini answers both with 429 `RESOURCE_EXHAUSTED`, often with the same words ("You exceeded your
current quota, please check your plan and billing details"), so the words alone do not tell.
The error's `details` do (google.rpc error model, https://ai.google.dev/gemini-api/docs/rate-limits
and https://cloud.google.com/apis/design/errors): a `QuotaFailure` violation names the quota
(`quotaId` such as `GenerateRequestsPerDayPerProjectPerModel-FreeTier`, `quotaValue`/"limit");
an `ErrorInfo` names a reason such as `BILLING_DISABLED`. The account is out of quota when:
- an `ErrorInfo` reason says billing (`BILLING_DISABLED`, `BILLING_NOT_ACTIVE`, ...), or
- a `QuotaFailure` violation is a per-day quota, or one whose limit is 0 (the tier has no access
  to the model: "limit: 0" in users' reports, googleapis/python-genai and continuedev/continue
  #10062), which waiting minutes does not lift.
A per-minute quota (with its `RetryInfo` delay) is rate limiting: TransientError as before.
"""

from __future__ import annotations

from typing import Any

#: ErrorInfo reasons that mean the account's billing (Google's API error reasons).
BILLING_REASONS = frozenset({"BILLING_DISABLED", "BILLING_NOT_ACTIVE", "BILLING_REQUIRED"})


def quota_reason(details: Any) -> str | None:
    """Why a Gemini error body (`APIError.details`) is the account's quota or billing, or None
    when it is not (rate limiting, or no details)."""
    error = details.get("error") if isinstance(details, dict) else None
    entries = error.get("details") if isinstance(error, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        kind = str(entry.get("@type", ""))
        if kind.endswith("google.rpc.ErrorInfo") and entry.get("reason") in BILLING_REASONS:
            return f"billing ({entry['reason']})"
        if kind.endswith("google.rpc.QuotaFailure"):
            for violation in entry.get("violations") or ():
                if not isinstance(violation, dict):
                    continue
                quota = str(violation.get("quotaId", ""))
                if "PerDay" in quota or str(violation.get("quotaValue", "")) == "0":
                    return f"quota {quota or violation.get('quotaMetric', '')} exhausted"
    return None
