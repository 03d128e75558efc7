"""Group commit of transitions: the guarded advances that worker threads ask for at about the same
time are written in one transaction, so a pass over N jobs costs a few fsync'd commits, not N.

Each advance keeps its own compare-and-set and event row (`ledger.core.store.advance_all`: the
guarded updates one by one, the group's event rows in one executemany); one that finds its job
moved on gets its `StaleWrite` and writes nothing, while the others of its group are committed.
A worker returns only once its transition is committed (or raises what stopped it), exactly as
with a transaction of its own: what a step does next never runs ahead of the record.

Whoever finds no commit under way leads: it takes every advance queued so far, commits them,
and wakes the others; one whose advance came too late for that group leads the next.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from ledger.core.states import State
from ledger.core.store import Lease, Move, advance_all, move


@dataclass
class _Advance:
    move: Move
    done: bool = False
    error: BaseException | None = field(default=None)


class GroupCommit:
    """Guarded advances from many threads, committed together."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ready = threading.Condition()
        self._queue: list[_Advance] = []
        self._leading = False
        #: Transactions committed, and advances in them (for bench/transitions.py).
        self.commits = 0
        self.advances = 0

    def advance(
        self,
        lease: Lease,
        from_state: State,
        to_state: State,
        *,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """`store.advance` in the next group's transaction; returns once that is committed.
        Raises its `StaleWrite` or `IllegalTransition` (nothing written for this job), or the
        error that stopped the whole group's transaction (nothing written for any)."""
        item = _Advance(move(lease, from_state, to_state, detail=detail, **fields))
        with self._ready:
            self._queue.append(item)
            while not item.done:
                if self._leading:
                    self._ready.wait()
                    continue
                self._leading = True
                group, self._queue = self._queue, []
                self._ready.release()
                try:
                    self._commit(group)
                finally:
                    self._ready.acquire()
                    self._leading = False
                    self._ready.notify_all()
        if item.error is not None:
            raise item.error

    def _commit(self, group: list[_Advance]) -> None:
        try:
            with self._engine.begin() as connection:
                refusals = advance_all(connection, [item.move for item in group])
                # One refused wrote nothing: the others of the group are committed all the same.
                for item, refused in zip(group, refusals, strict=True):
                    item.error = refused
            self.commits += 1
            self.advances += sum(1 for item in group if item.error is None)
        except BaseException as error:
            for item in group:
                if item.error is None:
                    item.error = error
        finally:
            for item in group:
                item.done = True
