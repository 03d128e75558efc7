"""Errors the user can act on. The CLI prints each as one line and exits with its code."""

from __future__ import annotations


class LedgerError(Exception):
    """A problem to report as one clear line, without a traceback."""

    exit_code = 1


class InputError(LedgerError):
    """Bad input (a file, a line, a field, an option): nothing was written or lost."""

    exit_code = 2
