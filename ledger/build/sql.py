"""Raw SQL the build sends straight to the driver (bulk inserts, the reuse lookup)."""

from __future__ import annotations

from sqlalchemy.engine import Connection


def placeholders(connection: Connection, count: int) -> str:
    """`count` bind markers in the driver's own parameter style, comma-separated."""
    style = connection.dialect.paramstyle
    if style == "qmark":
        return ", ".join(["?"] * count)
    if style in ("format", "pyformat"):
        return ", ".join(["%s"] * count)
    if style == "numeric":
        return ", ".join(f":{n}" for n in range(1, count + 1))
    raise NotImplementedError(f"parameter style {style}")
