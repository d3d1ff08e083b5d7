"""The figures provinces are judged by (API.md "Reports"), computed in the database.

Which shipments count: those registered in the window [start, end) — and, with a
unit, those the unit registered or that are addressed to it. Every figure below is
about that set; the SQL groups and counts, Python only adds up a few hundred rows
(and, for the medians, one pair of times per delivered shipment).

- on-time rate: delivered shipments whose delivery closed on or before `due_at`,
  over all delivered shipments of the set.
- door-to-desk: a submission's `picked_up` (at the citizen's door) to its
  `delivered` (signed for at the one-stop shop's desk); desk-to-door: a result's
  `picked_up` at the desk to its `delivered` at the door. Device times (`occurred_at`).
- HoSo's own postal figures, per unit (operational, not the province's criteria):
  1. has postal traffic: at least one shipment registered by it or addressed to it;
  2. dossiers received by post: submissions delivered to it, and their share of the
     dossiers it received that HoSo knows of (those plus results it sent home for
     dossiers handed in at its counter, i.e. results without a parent submission);
  3. results returned by post: its result shipments delivered, and their share of
     all the results it registered.
- the three administrative-reform criteria of a one-stop shop (`reform`), as provinces
  score them, come from the shop's own catalogue and dossier register (server/shop/):
  without a register imported for the window, `reform.register` is false and no share
  is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from msgspec import Struct

from shared.lifecycle import State
from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..errors import BadRequest
from ..shop import service as shop
from ..shop.service import Reform
from . import repository

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_DAYS = 400
REASONS = ("not_home", "refused", "wrong_address", "unidentified", "other")


class Durations(Struct):
    count: int
    median_hours: float | None


class UnitCriteria(Struct):
    unit: str
    name: str
    kind: str
    shipments: int
    has_postal_traffic: bool
    dossiers_received_by_post: int
    dossiers_received_total: int
    dossiers_received_by_post_pct: float | None
    results_returned_by_post: int
    results_total: int
    results_returned_by_post_pct: float | None
    reform: Reform | None = None  # a one-stop shop's three criteria from its register (None: a post office)


class Ratings(Struct):
    count: int
    average: float | None
    by_score: dict[str, int]


class Summary(Struct):
    start: datetime
    end: datetime
    unit: str | None
    total: int
    by_state: dict[str, int]
    by_kind: dict[str, int]
    by_field: dict[str, int]
    delivered: int
    delivered_on_time: int
    on_time_rate: float | None
    late_open: int
    door_to_desk: Durations
    desk_to_door: Durations
    failed_attempts: int
    failed_reasons: dict[str, int]
    ratings: Ratings
    units: list[UnitCriteria]


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def _parse_bound(text: str, name: str, *, is_end: bool) -> datetime:
    """A date (a whole Vietnamese day; `to` includes its day) or an ISO time with an offset."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if is_end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), VN)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"`{name}` must be a date like 2026-11-01 or a time like 2026-11-01T00:00:00+07:00; got {text!r}."
        ) from None
    if value.tzinfo is None:
        raise BadRequest(f"`{name}` needs a time zone, e.g. 2026-11-01T00:00:00+07:00.")
    return value


def window(start_text: str | None, end_text: str | None, now: datetime | None = None) -> Window:
    """The report's window; by default the last 30 days up to now."""
    now = now or utcnow()
    end = _parse_bound(end_text, "to", is_end=True) if end_text else now
    start = _parse_bound(start_text, "from", is_end=False) if start_text else end - timedelta(days=30)
    if start >= end:
        raise BadRequest("`from` must be before `to`.")
    if end - start > timedelta(days=MAX_DAYS):
        raise BadRequest(f"A report covers at most {MAX_DAYS} days; ask for a shorter window.")
    return Window(start, end)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


async def summary(
    db: Database, win: Window, unit_code: str | None, viewer: CurrentUser | None = None
) -> Summary:
    """The report; a one-stop shop's clerk (`viewer`) gets its own unit's only."""
    unit_code = shop.report_scope(viewer, unit_code).unit_code
    unit_row = None
    now = utcnow()
    async with db.read() as conn:
        unit_rows = await repository.all_units(conn)
        if unit_code:
            unit_row = next((u for u in unit_rows if u.code == unit_code), None)
            if unit_row is None:
                raise BadRequest(f"unit {unit_code!r} does not exist.")
        unit_id = unit_row.id if unit_row is not None else None
        grouped = await repository.grouped(conn, win.start, win.end, unit_id, now)
    lo = min((r.lo for r in grouped), default=0)
    hi = max((r.hi for r in grouped), default=0)
    legs, outcomes = await repository.legs_and_outcomes(db, win.start, win.end, unit_id, lo, hi)
    reasons = [r for r in outcomes if r.type == "delivery_failed"]
    ratings = [r for r in outcomes if r.type == "confirmed"]

    by_state = {st.value: 0 for st in State}
    by_kind = {"submission": 0, "result": 0}
    by_field: dict[str, int] = {}
    total = on_time = late = 0
    per_unit: dict[int, dict[str, int]] = {}

    def bump(unit_id: int | None, key: str, n: int) -> None:
        if unit_id is not None:
            counts = per_unit.setdefault(unit_id, {})
            counts[key] = counts.get(key, 0) + n

    for r in grouped:
        n = int(r.n)
        total += n
        by_state[r.state] = by_state.get(r.state, 0) + n
        by_kind[r.kind] = by_kind.get(r.kind, 0) + n
        by_field[r.field or ""] = by_field.get(r.field or "", 0) + n
        on_time += int(r.on_time or 0)
        late += int(r.late or 0)
        bump(r.unit_id, "shipments", n)
        if r.dest_unit_id != r.unit_id:
            bump(r.dest_unit_id, "shipments", n)
        delivered = r.state == State.DELIVERED.value
        if r.kind == "submission" and delivered:
            bump(r.dest_unit_id, "received_by_post", n)
        if r.kind == "result":
            bump(r.unit_id, "results_total", n)
            if delivered:
                bump(r.unit_id, "returned_by_post", n)
            if not r.has_parent:
                bump(r.unit_id, "counter_dossiers", n)
    delivered_n = by_state.get(State.DELIVERED.value, 0)

    medians = {"submission": Durations(0, None), "result": Durations(0, None)}
    for kind, leg in legs.items():
        hours = round(leg.median_s / 3600, 2) if leg.median_s is not None else None
        medians[kind] = Durations(count=leg.count, median_hours=hours)

    failed_reasons = {k: 0 for k in REASONS}
    for r in reasons:
        key = str(r.reason) if r.reason is not None else "other"
        failed_reasons[key] = failed_reasons.get(key, 0) + int(r.n)
    by_score = {str(k): 0 for k in range(1, 6)}
    for r in ratings:
        if r.rating is not None:
            by_score[str(int(r.rating))] = by_score.get(str(int(r.rating)), 0) + int(r.n)
    rated = sum(by_score.values())
    average = round(sum(int(k) * v for k, v in by_score.items()) / rated, 2) if rated else None

    criteria = []
    for u in unit_rows:
        if unit_row is not None and u.id != unit_row.id:
            continue
        c = per_unit.get(u.id, {})
        received = c.get("received_by_post", 0)
        received_total = received + c.get("counter_dossiers", 0)
        returned, results_total = c.get("returned_by_post", 0), c.get("results_total", 0)
        criteria.append(
            UnitCriteria(
                unit=u.code,
                name=u.name,
                kind=u.kind,
                shipments=c.get("shipments", 0),
                has_postal_traffic=c.get("shipments", 0) > 0,
                dossiers_received_by_post=received,
                dossiers_received_total=received_total,
                dossiers_received_by_post_pct=_pct(received, received_total),
                results_returned_by_post=returned,
                results_total=results_total,
                results_returned_by_post_pct=_pct(returned, results_total),
                reform=await shop.reform(db, u, win.start, win.end),
            )
        )
    return Summary(
        start=win.start,
        end=win.end,
        unit=unit_code,
        total=total,
        by_state=by_state,
        by_kind=by_kind,
        by_field=dict(sorted(by_field.items(), key=lambda kv: (-kv[1], kv[0]))),
        delivered=delivered_n,
        delivered_on_time=on_time,
        on_time_rate=_pct(on_time, delivered_n),
        late_open=late,
        door_to_desk=medians["submission"],
        desk_to_door=medians["result"],
        failed_attempts=sum(failed_reasons.values()),
        failed_reasons=failed_reasons,
        ratings=Ratings(count=rated, average=average, by_score=by_score),
        units=criteria,
    )


def local_day(dt: datetime, *, inclusive_end: bool = False) -> str:
    """A window bound as the Vietnamese date a person would type (`to` names its last day)."""
    value = dt.astimezone(VN)
    if inclusive_end and value.time() == time(0):
        value -= timedelta(days=1)
    return value.date().isoformat()
