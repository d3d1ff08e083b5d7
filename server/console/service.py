"""What the console shows: the live board, couriers' workload, sessions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared import codes
from shared.lifecycle import OPEN_STATES, RETURN_AFTER_ATTEMPTS
from shared.timeutil import as_utc, utcnow

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..errors import BadRequest
from ..shipments import repository as shipments_repo
from . import repository

VN = ZoneInfo("Asia/Ho_Chi_Minh")
BOARD_LIMIT = 200
AT_RISK_WITHIN = timedelta(hours=24)  # due this soon ...
NEAR_M = 2_000.0  # ... and the envelope is not yet this close to where it goes
AT_RISK_READS = 10  # pages of limit + 1 rows read at most to fill an at-risk board
OPEN = tuple(s.value for s in OPEN_STATES)
EARTH_M = 6_371_008.8


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine: within 0.5 % of the geodesic, and ~100 times cheaper for 200 rows a page."""
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(h)))


KINDS = ("submission", "result")


def local(dt: datetime | None, fmt: str = "%d/%m %H:%M") -> str:
    return as_utc(dt).astimezone(VN).strftime(fmt) if dt is not None else ""


@dataclass(frozen=True, slots=True)
class BoardFilters:
    state: str | None = None
    kind: str | None = None
    field: str | None = None
    unit: str | None = None
    courier: int | None = None
    late: bool = False
    at_risk: bool = False
    to_return: bool = False  # in custody after RETURN_AFTER_ATTEMPTS failed attempts: goes back

    def query(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in ("state", "kind", "field", "unit"):
            if value := getattr(self, name):
                out[name] = value
        if self.courier is not None:
            out["courier"] = str(self.courier)
        if self.late:
            out["late"] = "1"
        if self.at_risk:
            out["at_risk"] = "1"
        if self.to_return:
            out["to_return"] = "1"
        return out


@dataclass(slots=True)
class BoardRow:
    code: str
    grouped: str
    kind: str
    state: str
    field: str
    procedure: str
    recipient: str
    commune: str
    custodian_role: str | None
    custodian_name: str | None
    courier_id: int | None
    courier_name: str | None
    attempts: int
    created_at: datetime
    due_at: datetime
    age_hours: float
    late: bool
    at_risk: bool
    distance_m: float | None  # last known position to the destination

    @property
    def due(self) -> str:
        return local(self.due_at)

    @property
    def to_return(self) -> bool:
        """Delivery failed often enough that the envelope goes back (PRODUCT.md lifecycle)."""
        return self.state == "in_custody" and self.attempts >= RETURN_AFTER_ATTEMPTS


@dataclass(slots=True)
class Board:
    rows: list[BoardRow]
    matched: int
    late: int
    more: bool


def _destination(r: Any) -> tuple[float, float] | None:
    """Where the envelope goes next: the sender's door before pickup, the recipient after."""
    party = (r.sender if r.state == "registered" else r.recipient) or {}
    lat, lon = party.get("lat"), party.get("lon")
    return (lat, lon) if isinstance(lat, int | float) and isinstance(lon, int | float) else None


def _row(r: Any, now: datetime) -> BoardRow:
    due = as_utc(r.due_at)
    late = due < now
    dest = _destination(r)
    dist = None
    if dest is not None and r.lat is not None and r.lon is not None:
        dist = _metres((r.lat, r.lon), dest)
    near = dist is not None and dist <= NEAR_M
    at_risk = not late and due < now + AT_RISK_WITHIN and (r.state == "registered" or not near)
    recipient = r.recipient or {}
    return BoardRow(
        code=r.code,
        grouped=codes.group(r.code),
        kind=r.kind,
        state=r.state,
        field=r.field,
        procedure=r.procedure,
        recipient=recipient.get("name", ""),
        commune=recipient.get("commune", ""),
        custodian_role=r.custodian_role,
        custodian_name=r.custodian_name or (r.holder_name if r.custodian_role == "courier" else None),
        courier_id=r.assigned_courier_id,
        courier_name=r.courier_name or r.courier_username,
        attempts=r.attempts,
        created_at=as_utc(r.created_at),
        due_at=due,
        age_hours=(now - as_utc(r.created_at)).total_seconds() / 3600,
        late=late,
        at_risk=at_risk,
        distance_m=dist,
    )


async def unit_id(db: Database, code: str) -> int:
    async with db.read() as conn:
        uid = await shipments_repo.unit_id(conn, code)
    if uid is None:
        raise BadRequest(f"unit {code!r} does not exist.")
    return int(uid)


async def board(db: Database, user: CurrentUser, f: BoardFilters, *, limit: int = BOARD_LIMIT) -> Board:
    """Open shipments the user may see, soonest due first (so the late ones lead), with their
    last known position."""
    now = utcnow()
    if f.state and f.state not in OPEN:
        raise BadRequest(f"state must be one of the open states: {', '.join(OPEN)}.")
    if f.kind and f.kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}.")
    # at risk needs the distance to the destination. PostgreSQL computes it in the query (the
    # same haversine), so one read in the open-due index's order, limit + 1 rows, no over-read.
    # SQLite (no trigonometry in SQL): read a page past the limit, keep the rows at risk, and
    # read on after the last one only while the page is not yet full (at most AT_RISK_READS).
    in_sql = f.at_risk and not f.late and not db.is_sqlite
    query = repository.BoardQuery(
        state=f.state,
        kind=f.kind,
        field=f.field,
        unit_id=await unit_id(db, f.unit) if f.unit else None,
        courier=f.courier,
        due_before=now if f.late else None,
        due_between=(now, now + AT_RISK_WITHIN) if f.at_risk and not f.late else None,
        min_attempts=RETURN_AFTER_ATTEMPTS if f.to_return else None,
        far_m=NEAR_M if in_sql else None,
    )
    async with db.read() as conn:
        rows, matched, late = await repository.board(conn, user, query, now, limit + 1)
        out = [_row(r, now) for r in rows]
        if f.at_risk:
            kept = [r for r in out if r.at_risk]
            reads = 1
            while not in_sql and len(kept) <= limit and len(rows) == limit + 1 and reads < AT_RISK_READS:
                last = rows[-1]
                rows, _, _ = await repository.board(
                    conn, user, query, now, limit + 1, after=(last.due_at, last.id), count=False
                )
                kept += [r for r in (_row(x, now) for x in rows) if r.at_risk]
                reads += 1
            out = kept
    more = len(out) > limit
    if f.at_risk and not more:
        # every row at risk is on the page: the count is exact (with more than a page it is
        # the due-soon window's, an upper bound; counting at risk exactly cost more than the page)
        matched = len(out)
    return Board(rows=out[:limit], matched=matched, late=late, more=more)


async def couriers(db: Database) -> list[Any]:
    async with db.read() as conn:
        return await repository.couriers(conn)


async def all_units(db: Database) -> list[Any]:
    async with db.read() as conn:
        return await repository.all_units(conn)
