"""Typed reads of what a statement returns."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import CursorResult


def inserted_id(result: CursorResult[Any]) -> int:
    """The integer primary key of the one row a single-row INSERT just wrote.

    SQLAlchemy types `inserted_primary_key` as optional (it is None only for an executemany,
    which raises instead, or an INSERT … RETURNING); here it always holds the row's key."""
    pk = result.inserted_primary_key
    if pk is None:
        raise RuntimeError("the INSERT reported no primary key")
    return int(pk[0])
