"""A remote side effect whose outcome is recorded: "record intent, find the object carrying my
token, adopt it, else act", written once for every step that creates something at the provider.

The token is a fresh random id recorded on the job (`submit_token`) before the side effect, and
the remote object carries it (the upload's file name, the batch's metadata). Whatever instant a
reconciler dies at, the next one does the side effect at most once more, never twice:

1. Before the intent is committed: nothing was sent (the side effect only starts after that
   commit). The next attempt finds no token and starts afresh with a new one.
2. After the intent, before the side effect reached the provider: the token is recorded and no
   object carries it. The next attempt looks, finds nothing, and acts.
3. After the side effect, before its outcome is recorded (a crash, or a reply lost to a timeout):
   the object exists but the job does not know its id. The next attempt finds it by the token and
   adopts it instead of acting again. Should the provider hold several objects with one token (a
   listing that lagged behind an earlier act), the first is kept and the others discarded.

The caller records the outcome (and clears the token) in its own guarded transition, so a crash
between adopting and recording lands in window 3 again and is adopted again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ledger.core.crashpoints import crash_point

T = TypeVar("T")


@dataclass(frozen=True)
class Adoption(Generic[T]):
    """The remote object a side effect is about, and how it was obtained."""

    #: The object carrying `token`: found at the provider, or just made by the side effect.
    remote: T
    #: The token the object carries (the one recorded before the side effect).
    token: str
    #: True when the object was found (made by an earlier attempt), False when just made.
    adopted: bool


def new_token() -> str:
    """A fresh submit token: random, so no two attempts ever share one."""
    return uuid.uuid4().hex


def adopt_or_act(
    recorded_token: str | None,
    *,
    record_intent: Callable[[str], None],
    find: Callable[[str], Sequence[T]],
    discard: Callable[[T], None],
    act: Callable[[str], T],
    before_act: str,
) -> Adoption[T]:
    """Obtain the remote object for `recorded_token`'s side effect, doing that effect at most once.

    - No token recorded: make one, `record_intent(token)` (durably, before anything is sent),
      then `act(token)`. Nothing can carry a token that did not exist, so nothing is looked up.
      `record_intent` may raise to refuse (say, a quota is full); then nothing is sent.
    - A token recorded: an earlier attempt may have acted. `find(token)` lists the objects
      carrying it; the first is adopted and every other one passed to `discard`. When none is
      found, `act(token)`.

    `before_act` names the crash point right before the side effect (see ledger.core.crashpoints).
    """
    if recorded_token is None:
        token = new_token()
        record_intent(token)
        found: Sequence[T] = ()
    else:
        token = recorded_token
        found = find(token)
    if found:
        remote, *duplicates = found
        for duplicate in duplicates:
            discard(duplicate)
        return Adoption(remote, token, adopted=True)
    crash_point(before_act)
    return Adoption(act(token), token, adopted=False)
