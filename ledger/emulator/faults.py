"""Which injected faults fire on a request: each rule counts the requests it matches."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from ledger.emulator.config import FaultRule

#: Fault kinds that replace or spoil the answer; when several fire, the first rule wins.
ANSWER_FAULTS = ("http_500", "http_429", "drop_response", "truncate_download")


@dataclass
class FaultDecision:
    """What to do to one request."""

    #: Seconds to wait before handling it.
    latency: float = 0.0
    #: The answer-spoiling fault that fired, if any.
    answer: FaultRule | None = None
    #: Every kind that fired, for the stats.
    fired: list[str] = field(default_factory=list)


class FaultBook:
    """The active rules and their counters; `decide` is thread-safe."""

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
                decision.fired.append(rule.kind)
                if rule.kind == "latency":
                    decision.latency += rule.seconds
                elif decision.answer is None:
                    decision.answer = rule
            # Latency counts as served when it fires; an answer fault counts when the server
            # applies it (a truncation of a body too short to cut is not served).
            self.served.update(k for k in decision.fired if k == "latency")
        return decision

    def count_served(self, kind: str) -> None:
        """Record that the server applied a fault of this kind."""
        with self._lock:
            self.served[kind] += 1


def _matches(rule: FaultRule, route: str) -> bool:
    if rule.route is not None:
        return rule.route == route
    # A download can only be cut off where there is a download.
    return rule.kind != "truncate_download" or route == "file_content"
