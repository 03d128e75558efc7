"""What `GET /_emulator/stats` reports: counts derived from the stored objects, plus the request
and fault counters of this run.

File and batch counts come from the store itself (one source of truth, and they survive a restart
on a state directory); requests and faults count since this emulator started.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ledger.emulator.config import FAULT_KINDS, ROUTE_NAMES, SYNC_ROUTE_NAMES
from ledger.emulator.store import Store


def collect(store: Store, requests: Mapping[str, int], faults: Mapping[str, int]) -> dict[str, Any]:
    """The stats document (the caller holds the store lock and has advanced the batches)."""
    uploaded = [f for f in store.files.values() if f.purpose != "batch_output"]
    by_metadata: dict[str, Counter[str]] = {}
    for batch in store.batches.values():
        for key, value in (batch.metadata or {}).items():
            by_metadata.setdefault(key, Counter())[value] += 1
    batches = store.batches.values()
    message_batches = store.message_batches.values()
    return {
        "files": {
            "created": len(uploaded),
            "by_name": dict(Counter(f.filename for f in uploaded)),
            "by_purpose": dict(Counter(f.purpose for f in uploaded)),
            "deleted": sum(1 for f in uploaded if f.deleted),
            "generated": len(store.files) - len(uploaded),
        },
        "batches": {
            "created": len(store.batches),
            "by_status": dict(Counter(b.status for b in batches)),
            "by_scenario": dict(Counter(b.plan.scenario for b in batches)),
            "by_metadata": {key: dict(values) for key, values in by_metadata.items()},
            # A host that keeps no metadata (Together): its input file names the job.
            "by_input_filename": dict(Counter(b.input_filename for b in batches)),
            "by_host": dict(Counter(b.host or "openai" for b in batches)),
        },
        # Message Batches have no metadata: the first custom_id and the fingerprint of the
        # request set (its params alone) are what prove no request set was sent twice.
        "message_batches": {
            "created": len(store.message_batches),
            "deleted": sum(1 for b in message_batches if b.deleted),
            "by_status": dict(Counter(b.processing_status for b in message_batches)),
            "by_scenario": dict(Counter(b.plan.scenario for b in message_batches)),
            "by_first_custom_id": dict(
                Counter(b.requests[0]["custom_id"] for b in message_batches)
            ),
            "by_fingerprint": dict(Counter(b.fingerprint for b in message_batches)),
        },
        "requests": {**dict.fromkeys(ROUTE_NAMES + SYNC_ROUTE_NAMES, 0), **requests},
        "faults": {**dict.fromkeys(FAULT_KINDS, 0), **faults},
    }
