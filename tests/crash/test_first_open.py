"""Processes opening one fresh ledger at the same instant: every one of them opens it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from ledger.core.db import SCHEMA_HEAD, open_ledger, schema_revision

OPENER = textwrap.dedent(
    """
    import sys, time
    from ledger.core.db import open_ledger
    url, start_at = sys.argv[1], float(sys.argv[2])
    import ledger.core.models, alembic.command  # imported before the start line, not after
    while time.time() < start_at:  # line the openers up so their upgrades overlap
        time.sleep(0.001)
    open_ledger(url).dispose()
    """
)


def test_concurrent_first_opens_all_succeed(db_url: str) -> None:
    """Four processes open one fresh database at once; each succeeds and the schema is at head."""
    start_at = time.time() + 3.0
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, db_url, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for opener in openers:
        _out, err = opener.communicate(timeout=120)
        assert opener.returncode == 0, err
    engine = open_ledger(db_url)
    try:
        assert schema_revision(engine) == SCHEMA_HEAD
    finally:
        engine.dispose()
