"""The console's shipment page: the custody timeline as evidence, and whether it verifies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared import codes
from shared.bundle import verify_bundle
from shared.geo import distance_m
from shared.pages import files_named, pages_problem
from shared.timeutil import as_utc, from_wire

from ..auth.service import CurrentUser
from ..custody import export
from ..db.engine import Database
from ..keys import ServerKeys
from ..shipments import repository
from ..shipments import service as shipments
from ..shipments.schemas import ShipmentDetail
from .service import local

TIME_FMT = "%d/%m/%Y %H:%M:%S"


@dataclass(slots=True)
class EventRow:
    seq: int
    type: str
    actor: str
    actor_name: str
    counterparty: dict[str, Any] | None
    device_time: str
    gps_time: str
    server_time: str
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    distance_m: float | None
    place: str  # which address the distance is measured to: sender or recipient
    signature: str | None
    photos: list[str]
    missing: list[str]
    flags: list[str]
    data: dict[str, Any]
    hash: str
    prev: str | None
    device: str

    @property
    def no_fix_key(self) -> str | None:
        """The i18n key of a no-fix reason the software itself writes; a courier's own words
        are shown as typed."""
        return NO_FIX_KEYS.get(str(self.data.get("no_fix_reason", "")))


# the reasons written by server/custody/service.py (server_event) and courier_app/flows/custody.py
NO_FIX_KEYS = {
    "recorded by the server": "shipment.no_fix.server",
    "no GPS fix on the device": "shipment.no_fix.device",
}


@dataclass(slots=True)
class RejectedRow:
    type: str
    actor: str
    reason: str
    server_time: str
    device_time: str
    hash: str


@dataclass(slots=True)
class PageSet:
    """One `digitised` event's pages (CUSTODY.md §4.1): who captured them, when, the PDF."""

    seq: int
    actor: str
    actor_name: str
    at: str
    pdf: str
    pdf_kib: int
    ocr: str
    source: str
    pages: list[dict[str, Any]]
    missing: list[str]


@dataclass(slots=True)
class Verification:
    ok: bool
    events: int
    tree_size: int
    witnesses: int
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ShipmentPage:
    detail: ShipmentDetail
    grouped: str
    due: str
    created: str
    events: list[EventRow]
    rejected: list[RejectedRow]
    verification: Verification
    points: list[tuple[float, float, str]]  # (lat, lon, label) for the little map
    destination: tuple[float, float] | None
    page_sets: list[PageSet] = field(default_factory=list)


def _point(party: dict[str, Any]) -> tuple[float, float] | None:
    lat, lon = party.get("lat"), party.get("lon")
    return (lat, lon) if isinstance(lat, int | float) and isinstance(lon, int | float) else None


def _wire_local(text: str | None) -> str:
    return local(from_wire(text), TIME_FMT) if text else ""


async def _names(db: Database, actors: set[str]) -> dict[str, str]:
    async with db.read() as conn:
        names = await repository.user_names(conn, actors)
    return {actor: n.shown for actor, n in names.items()}


def verify(bundle: dict[str, Any], head: str | None) -> Verification:
    checks = verify_bundle(bundle)
    # no cosignature yet is normal between a shop's rounds; a bad one is a failure
    failures = [
        f"{c.name}: {m}"
        for c in checks
        for m in c.failures
        if not (c.name == "witness cosignatures" and m.startswith("none"))
    ]
    if bundle["shipment"].get("head") != head:
        failures.append("the bundle's head is not the shipment's current head")
    return Verification(
        ok=not failures,
        events=len(bundle["events"]),
        tree_size=int(bundle["tree_head"].get("size", 0)),
        witnesses=len(bundle.get("witnesses") or []),
        failures=failures,
    )


async def shipment_page(
    db: Database, keys: ServerKeys, base_url: str, user: CurrentUser, code: str
) -> ShipmentPage:
    detail = await shipments.detail(db, keys, base_url, user, code)
    bundle = await export.bundle(db, keys, user, code)
    names = await _names(db, {v.event["actor"] for v in detail.events} | {x.actor for x in detail.rejected})
    sender_pt, recipient_pt = _point(detail.sender or {}), _point(detail.recipient or {})
    rows: list[EventRow] = []
    points: list[tuple[float, float, str]] = []
    for view in detail.events:
        ev = view.event
        loc = ev.get("location") or None
        at_sender = ev["type"] == "picked_up"
        target = sender_pt if at_sender else recipient_pt
        dist = None
        if loc and target:
            dist = distance_m((loc["lat"], loc["lon"]), target)
        if loc:
            points.append((loc["lat"], loc["lon"], f"{view.seq}"))
        att = ev.get("attachments") or {}
        rows.append(
            EventRow(
                seq=view.seq,
                type=ev["type"],
                actor=ev["actor"],
                actor_name=names.get(ev["actor"], ""),
                counterparty=ev.get("counterparty"),
                device_time=_wire_local(ev.get("occurred_at")),
                gps_time=_wire_local(loc.get("fix_at")) if loc else "",
                server_time=local(view.received_at, TIME_FMT),
                lat=loc["lat"] if loc else None,
                lon=loc["lon"] if loc else None,
                accuracy_m=loc.get("accuracy_m") if loc else None,
                distance_m=dist,
                place="sender" if at_sender else "recipient",
                signature=att.get("signature"),
                photos=list(att.get("photos") or []),
                missing=view.missing_attachments,
                flags=view.flags,
                data={k: v for k, v in (ev.get("data") or {}).items() if v not in (None, "", [], {})},
                hash=ev["hash"],
                prev=ev.get("prev"),
                device=ev.get("device", ""),
            )
        )
    page_sets = await _page_sets(db, rows)
    rejected = [
        RejectedRow(
            type=x.type,
            actor=names.get(x.actor, x.actor),
            reason=x.reason,
            server_time=local(x.received_at, TIME_FMT),
            device_time=_wire_local(x.event.get("occurred_at")),
            hash=x.hash,
        )
        for x in detail.rejected
    ]
    return ShipmentPage(
        detail=detail,
        grouped=codes.group(detail.code),
        due=local(detail.due_at, TIME_FMT),
        created=local(detail.created_at, TIME_FMT),
        events=rows,
        rejected=rejected,
        verification=verify(bundle, detail.head),
        points=points,
        destination=recipient_pt,
        page_sets=page_sets,
    )


async def _page_sets(db: Database, rows: list[EventRow]) -> list[PageSet]:
    from ..custody import attachments

    sets = [
        r for r in rows if isinstance(r.data.get("pages"), dict) and pages_problem(r.data["pages"]) is None
    ]
    wanted = {sha for r in sets for _, sha in files_named(r.data["pages"])}
    present = await attachments.present(db, wanted)
    out = []
    for r in sets:
        p = r.data["pages"]
        out.append(
            PageSet(
                seq=r.seq,
                actor=r.actor,
                actor_name=r.actor_name,
                at=r.device_time,
                pdf=p["pdf"],
                pdf_kib=max(1, p["pdf_bytes"] // 1024),
                ocr=p["ocr"],
                source=p["source"],
                pages=list(p["pages"]),
                missing=[sha for _, sha in files_named(p) if sha not in present],
            )
        )
    return out


def as_local(dt: datetime) -> str:
    return local(as_utc(dt), TIME_FMT)
