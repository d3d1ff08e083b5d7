"""UTCDateTime's one-step SQLite formatting stores exactly what SQLAlchemy's DATETIME does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from server.db.types import UTCDateTime

_SQLITE = sqlite.dialect()
_FAST = UTCDateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)
_SQLALCHEMY = DateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)


@given(st.datetimes(timezones=st.just(UTC)))
def test_same_text_as_sqlalchemy_datetime(value: datetime) -> None:
    assert _FAST(value) == _SQLALCHEMY(value.replace(tzinfo=None))


def test_other_offsets_are_stored_as_utc_and_naive_is_refused() -> None:
    hanoi = datetime(2026, 12, 2, 20, 0, tzinfo=timezone(timedelta(hours=7)))
    assert _FAST(hanoi) == "2026-12-02 13:00:00.000000"
    assert _FAST(None) is None
    with pytest.raises(ValueError, match="naive"):
        _FAST(datetime(2026, 12, 2))
