"""`--log-format json`: one JSON object a line, with the run, job and batch ids where known.

The ids come from `extra={"run": ..., "job_id": ..., "batch_id": ...}` when a caller gives them;
otherwise from the message itself: the reconciler's lines start `job %s:` with the job's id as
first argument, and `lookup` (given the ledger) finds that job's run and batch. Every message
goes through `adapters.base.scrub`, like every provider error, so no key is ever written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.base import scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: Where an API key may sit in the environment (the pattern in scrub catches the usual shapes).
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")

Lookup = Callable[[int], dict[str, Any]]


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, and run/job_id/batch_id."""

    def __init__(self, lookup: Lookup | None = None) -> None:
        super().__init__()
        self.lookup = lookup
        self.secrets = [os.environ[name] for name in KEY_VARIABLES if os.environ.get(name)]

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._scrub(record.getMessage()),
        }
        ids = {key: getattr(record, key) for key in ("run", "job_id", "batch_id")}
        job_id = ids["job_id"] if ids["job_id"] is not None else _job_of(record)
        if job_id is not None:
            ids["job_id"] = job_id
            if self.lookup is not None and (ids["run"] is None or ids["batch_id"] is None):
                found = self.lookup(job_id)
                ids = {key: ids[key] if ids[key] is not None else found.get(key) for key in ids}
        line.update((key, value) for key, value in ids.items() if value is not None)
        if record.exc_info:
            line["exception"] = self._scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str)

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = scrub(text, secret)
        return scrub(text, None)


class TextFormatter(logging.Formatter):
    """A record as one text line (traceback after it), scrubbed of keys like the JSON lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = [os.environ[name] for name in KEY_VARIABLES if os.environ.get(name)]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = scrub(text, secret)
        return scrub(text, None)


class _Defaults(logging.Filter):
    # A record without the ids as attributes reads as None (the formatter then looks further).
    def filter(self, record: logging.LogRecord) -> bool:
        for key in ("run", "job_id", "batch_id"):
            if not hasattr(record, key):
                setattr(record, key, None)
        return True


def _job_of(record: logging.LogRecord) -> int | None:
    """The job id of a `job %s: ...` message."""
    if isinstance(record.msg, str) and record.msg.startswith("job %s") and record.args:
        first = record.args[0] if isinstance(record.args, tuple) else None
        if isinstance(first, int):
            return first
    return None


def job_lookup(engine: Engine) -> Lookup:
    """A job's run name and batch id from the ledger; kept once the batch id is known."""
    from sqlalchemy import select

    from ledger.core.models import Job, Run

    known: dict[int, dict[str, Any]] = {}

    def lookup(job_id: int) -> dict[str, Any]:
        if job_id in known:
            return known[job_id]
        with engine.connect() as connection:
            row = connection.execute(
                select(Run.name, Job.batch_id)
                .join(Run, Run.id == Job.run_id)
                .where(Job.id == job_id)
            ).first()
        found = {} if row is None else {"run": row.name, "batch_id": row.batch_id}
        if found.get("batch_id"):
            known[job_id] = found
        return found

    return lookup


def json_handler(stream: Any, lookup: Lookup | None = None) -> logging.Handler:
    """A handler writing JSON lines to `stream`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(lookup))
    handler.addFilter(_Defaults())
    return handler


def configure_logging(
    verbose: bool, log_format: str = "text", engine: Engine | None = None
) -> None:
    """The `ledger` loggers on stderr: text lines, or JSON lines (`--log-format json`)."""

    if log_format == "json":
        # Machine-read logs carry every transition (info); --verbose adds the debug lines.
        handler = json_handler(sys.stderr, job_lookup(engine) if engine is not None else None)
        level = logging.DEBUG if verbose else logging.INFO
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(TextFormatter())
        level = logging.DEBUG if verbose else logging.WARNING
    # The level is the handler's: the metrics read info records the person need not see.
    handler.setLevel(level)
    logger = logging.getLogger("ledger")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
