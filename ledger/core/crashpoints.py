"""Test-only crash hooks: `LEDGER_CRASH_AT=<point>` makes the process die at that point.

Crash safety is proven by killing real reconcilers between every recorded step and the remote
side effect around it. `os._exit` skips every cleanup handler, as SIGKILL would.
"""

from __future__ import annotations

import os
from collections.abc import Callable

#: In-process tests install a hook that raises instead of exiting (tests/unit/test_adopt.py,
#: tests/unit/test_reconcile_steps.py); tests/crash/ kill real processes instead.
_hook: Callable[[str], None] | None = None


def set_crash_hook(hook: Callable[[str], None] | None) -> None:
    """Call `hook(point)` at every crash point (None removes it)."""
    global _hook
    _hook = hook


#: Every point a reconciler can be told to die at, in lifecycle order.
CRASH_POINTS = (
    "before_upload",  # upload intent recorded, nothing sent
    "after_upload",  # the provider holds the file; the ledger does not know its id
    "after_upload_recorded",
    "before_create",  # create intent recorded, nothing sent
    "after_create",  # the provider runs the batch; the ledger does not know its id
    "after_create_recorded",
    "after_poll",  # the provider reported a new status; not yet recorded
    "after_download",  # files on disk, state not yet recorded
    "after_download_recorded",
    "after_normalize",  # results written, state not yet recorded
)


def crash_point(name: str) -> None:
    """Die here, at once and without cleanup, if LEDGER_CRASH_AT names this point."""
    if os.environ.get("LEDGER_CRASH_AT") == name:
        os._exit(137)
    if _hook is not None:
        _hook(name)
