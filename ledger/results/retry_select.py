"""Which requests a retry takes: `ledger retry --only 429,5xx,expired`.

A word is one of three kinds, told apart by its shape, so a status added later (by a new
`STATUSES` member in `ledger.results.schema`) is taken without a change here:

- a request status other than `succeeded` (`failed`, `expired`, `cancelled`, `missing`,
  `unavailable` ...): every request with that status;
- an HTTP status (`429`) or class (`5xx`, `4xx`): the requests whose result carried it;
- anything else is an error code or class as the provider wrote it (`rate_limit_exceeded`,
  `server_error`, `batch_expired`): the requests whose `error_code` is that word.

Codes and classes only ever pick requests that did not succeed; `pending` ones (still carried by
a job that is not normalized) are never picked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from ledger.core.models import Request
from ledger.errors import InputError
from ledger.results.schema import (
    CANCELLED,
    EXPIRED,
    FAILED,
    MISSING,
    STATUSES,
    SUCCEEDED,
    UNAVAILABLE,
)

#: Every status `--only` takes: any a request ends in without an answer. A status added to
#: `STATUSES` later (`invalid`, `truncated`) is taken here as it is.
NOT_SUCCEEDED: tuple[str, ...] = tuple(s for s in STATUSES if s != SUCCEEDED)

#: What a retry with no word takes: the statuses a second try can change.
DEFAULT_WORDS: tuple[str, ...] = tuple(
    s for s in (FAILED, EXPIRED, CANCELLED, MISSING, UNAVAILABLE) if s in STATUSES
)

_HTTP_STATUS = re.compile(r"[1-5][0-9][0-9]")
_HTTP_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)


@dataclass(frozen=True)
class RetrySelection:
    """The parsed words of `--only` (and the `--failed`/`--expired`/... flags)."""

    statuses: tuple[str, ...] = ()
    http_statuses: tuple[int, ...] = ()
    #: HTTP classes by first digit: 5 for `5xx`.
    http_classes: tuple[int, ...] = ()
    error_codes: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """The selection as words, for messages and the retry job's event."""
        return (
            *self.statuses,
            *(str(code) for code in self.http_statuses),
            *(f"{digit}xx" for digit in self.http_classes),
            *self.error_codes,
        )

    def condition(self) -> ColumnElement[bool]:
        """The SQL condition a `requests` row must meet to be retried."""
        not_succeeded = Request.status.in_(NOT_SUCCEEDED)
        by_code: list[ColumnElement[bool]] = []
        if self.http_statuses:
            by_code.append(Request.http_status.in_(self.http_statuses))
        by_code.extend(
            Request.http_status.between(digit * 100, digit * 100 + 99)
            for digit in self.http_classes
        )
        if self.error_codes:
            by_code.append(Request.error_code.in_(self.error_codes))
        clauses: list[ColumnElement[bool]] = []
        if self.statuses:
            clauses.append(Request.status.in_(self.statuses))
        if by_code:
            clauses.append(and_(not_succeeded, or_(*by_code)))
        # A copy (`reused_from`) is never sent: it is answered again with its first copy.
        return and_(Request.reused_from.is_(None), or_(*clauses)) if clauses else false()


def parse_selection(words: Iterable[str]) -> RetrySelection:
    """Words (each may hold several, comma-separated) as a selection; none: `DEFAULT_WORDS`.
    InputError for `succeeded` or `pending`, which a retry never takes."""
    statuses: list[str] = []
    http_statuses: list[int] = []
    http_classes: list[int] = []
    error_codes: list[str] = []
    given = [w.strip() for word in words for w in word.split(",") if w.strip()]
    for word in given or DEFAULT_WORDS:
        lowered = word.lower()
        klass = _HTTP_CLASS.fullmatch(word)
        if lowered in (SUCCEEDED, "pending"):
            raise InputError(
                f"--only {word}: a retry takes requests that finished without an answer "
                f"({', '.join(NOT_SUCCEEDED)}, an HTTP status or class, or an error code)"
            )
        if lowered in NOT_SUCCEEDED:
            _add(statuses, lowered)
        elif _HTTP_STATUS.fullmatch(word):
            _add(http_statuses, int(word))
        elif klass:
            _add(http_classes, int(klass.group(1)))
        else:
            _add(error_codes, word)
    return RetrySelection(
        tuple(statuses), tuple(http_statuses), tuple(http_classes), tuple(error_codes)
    )


def _add(items: list[Any], item: Any) -> None:
    if item not in items:
        items.append(item)
