"""Which injected faults fire on a request: each rule counts the requests it matches."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from ledger.emulator.config import DOWNLOAD_ROUTES, FaultRule


@dataclass
class FaultDecision:
    """What to do to one request."""

    #: Seconds to wait before handling it.
    latency: float = 0.0
    #: The answer-spoiling fault that fired, if any.
    answer: FaultRule | None = None


class FaultBook:
    """The active rules and their counters; `decide` is thread-safe.

    Every rule counts the requests it matches, whether or not an earlier rule fired on them; when
    several answer faults fire on one request, the first rule in the list wins.
    """

    def __init__(self, rules: tuple[FaultRule, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._rules = rules
        self._seen = [0] * len(rules)
        self._fired = [0] * len(rules)
        #: Faults served per kind since the emulator started.
        self.served: Counter[str] = Counter()

    def replace(self, rules: tuple[FaultRule, ...]) -> None:
        """Install new rules with fresh counters (the served totals are kept)."""
        with self._lock:
            self._rules = rules
            self._seen = [0] * len(rules)
            self._fired = [0] * len(rules)

    def decide(self, route: str) -> FaultDecision:
        """Count this request against every matching rule and return what fires."""
        decision = FaultDecision()
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not _matches(rule, route):
                    continue
                self._seen[index] += 1
                if rule.every is not None and self._seen[index] % rule.every:
                    continue
                if rule.times is not None and self._fired[index] >= rule.times:
                    continue
                self._fired[index] += 1
                if rule.kind == "latency":
                    # Latency is served as it fires; an answer fault only when the server applies
                    # it (a body too short to cut is not truncated).
                    decision.latency += rule.seconds
                    self.served["latency"] += 1
                elif decision.answer is None:
                    decision.answer = rule
        return decision

    def count_served(self, kind: str) -> None:
        """Record that the server applied a fault of this kind."""
        with self._lock:
            self.served[kind] += 1


def _matches(rule: FaultRule, route: str) -> bool:
    if rule.route is not None:
        return rule.route == route
    # A download can only be cut off where there is a download.
    return rule.kind != "truncate_download" or route in DOWNLOAD_ROUTES
