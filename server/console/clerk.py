"""The clerk's screens: register a shipment from a form, print labels, receive a courier's batch."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import msgspec

from shared import codes
from shared.api import PendingHandover
from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..custody import attachments as attachment_store
from ..db.engine import Database
from ..errors import BadRequest, NotFoundException, Unprocessable
from ..shipments import repository as shipments_repo
from ..shipments.schemas import ShipmentCreate
from . import catalog, repository
from .service import VN, local

MAX_SIGNATURE_PNG = 2 * 1024 * 1024
PARTY_FIELDS = ("name", "phone", "address", "province", "commune", "id_last4")


def _party(form: dict[str, str], prefix: str) -> dict[str, Any] | None:
    values = {k: form.get(f"{prefix}_{k}", "").strip() for k in PARTY_FIELDS}
    if not any(values.values()):
        return None
    province, commune = values["province"], values["commune"]
    if province and province not in catalog.province_names():
        raise BadRequest(f"{prefix}: {province!r} is not one of the 34 provinces (the map since July 2025).")
    if commune and commune not in catalog.communes_of(province):
        raise BadRequest(f"{prefix}: {commune!r} is not a commune or ward of {province or 'any province'}.")
    return {k: v for k, v in values.items() if v}


def shipment_from_form(form: dict[str, str]) -> ShipmentCreate:
    """The register form as the API's ShipmentCreate; every rule of the API applies unchanged."""
    try:
        due_day = date.fromisoformat(form.get("due_date", ""))
    except ValueError:
        raise BadRequest("due_date: give the promised date (hạn trả), e.g. 2026-12-01.") from None
    try:
        due_time = time.fromisoformat(form.get("due_time") or "17:00")
    except ValueError:
        raise BadRequest("due_time: give a time like 17:00.") from None
    fee_text = form.get("fee_vnd", "").replace(".", "").replace(",", "").strip() or "0"
    if not fee_text.isdigit():
        raise BadRequest("fee_vnd: the fee is a whole number of đồng, e.g. 50000.")
    body: dict[str, Any] = {
        "kind": form.get("kind", ""),
        "due_at": datetime.combine(due_day, due_time, VN).isoformat(),
        "dossier_ref": form.get("dossier_ref", "").strip(),
        "procedure": form.get("procedure", "").strip(),
        "field": form.get("field", "").strip(),
        "fee_vnd": int(fee_text),
        "components": [c.strip() for c in form.get("components", "").splitlines() if c.strip()],
    }
    for role in ("sender", "recipient"):
        if (party := _party(form, role)) is not None:
            body[role] = party
    if parent := form.get("parent", "").strip():
        body["parent"] = parent
    if dest := form.get("dest_unit", "").strip():
        body["dest_unit"] = dest
    try:
        return msgspec.convert(body, ShipmentCreate)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"The form is not complete: {exc}.") from None


async def with_catalogue(db: Database, user: CurrentUser, form: dict[str, str]) -> dict[str, str]:
    """A procedure picked from the catalogue (`procedure_code`) brings its name, field,
    components and fee from there; without one (“other”) the typed ones stay.
    The catalogue is the destination shop's for a submission sent to one, else the clerk's unit's."""
    code = form.get("procedure_code", "").strip()
    if not code:
        return form
    unit = form.get("dest_unit", "").strip() or user.unit_code or ""
    from ..shop import service as shop

    p = await shop.procedure_for_registration(db, unit, code)
    return {
        **form,
        "procedure": p.name,
        "field": p.field,
        "components": "\n".join(p.components),
        "fee_vnd": str(p.fee_vnd),
    }


def parse_codes(text: str) -> list[str]:
    found: list[str] = []
    for line in text.replace(",", "\n").splitlines():
        if line.strip():
            try:
                code = codes.normalize(line)
            except codes.InvalidCode as exc:
                raise BadRequest(f"{line.strip()!r}: {exc}") from None
            if code not in found:
                found.append(code)
    if not found:
        raise BadRequest("Give at least one shipment code.")
    return found


async def recent_registered(db: Database, user: CurrentUser, limit: int = 40) -> list[Any]:
    async with db.read() as conn:
        return await repository.recent_registered(conn, user.unit_id, limit)


# ---- receiving a courier's batch ---------------------------------------------------------------


@dataclass(slots=True)
class Held:
    code: str
    grouped: str
    kind: str
    procedure: str
    recipient: str
    due: str


async def held_for_unit(db: Database, user: CurrentUser, courier_id: int) -> list[Held]:
    """Envelopes the courier holds now that end at the clerk's unit (a submission for the shop,
    or anything being returned to the unit that registered it)."""
    async with db.read() as conn:
        rows = await repository.held_for_unit(conn, courier_id, user.unit_id)
    return [
        Held(
            r.code,
            codes.group(r.code),
            r.kind,
            r.procedure,
            (r.recipient or {}).get("name", ""),
            local(r.due_at),
        )
        for r in rows
    ]


def decode_signature(data_url: str) -> bytes:
    prefix = "data:image/png;base64,"
    if not data_url.startswith(prefix):
        raise BadRequest("Sign in the box first: the signature is missing.")
    try:
        png = base64.b64decode(data_url[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("The signature could not be read; clear it and sign again.") from None
    if len(png) > MAX_SIGNATURE_PNG:
        raise BadRequest("The signature image is too large.")
    return png


async def receive(
    db: Database,
    root: Path,
    user: CurrentUser,
    courier_id: int,
    wanted: list[str],
    signature_png: bytes,
    strokes_json: bytes,
) -> int:
    """Record what the clerk received and signed for; the courier's phone then signs the
    `delivered` (or `returned`) events with this signature, as the custody chain requires."""
    if user.unit_id is None:
        raise Unprocessable("Only a clerk of a unit can receive envelopes.")
    held = {h.code for h in await held_for_unit(db, user, courier_id)}
    strangers = [c for c in wanted if c not in held]
    if strangers:
        raise Unprocessable(
            f"Not held by this courier for your unit: {', '.join(codes.group(c) for c in strangers[:5])}."
        )
    limits = {"image/png": MAX_SIGNATURE_PNG, "application/json": 1024 * 1024}
    attachment_store.check_content("image/png", signature_png, limits)
    attachment_store._check_image(signature_png, "image/png")
    sig = hashlib.sha256(signature_png).hexdigest()
    await attachment_store.store(db, root, sig, "image/png", signature_png, user.id)
    strokes = None
    if strokes_json:
        attachment_store.check_content("application/json", strokes_json, limits)
        strokes = hashlib.sha256(strokes_json).hexdigest()
        await attachment_store.store(db, root, strokes, "application/json", strokes_json, user.id)
    async with db.write() as conn:
        handover_id = await repository.insert_handover(
            conn,
            {
                "unit_id": user.unit_id,
                "clerk_id": user.id,
                "courier_id": courier_id,
                "codes": wanted,
                "signature": sig,
                "strokes": strokes,
                "created_at": utcnow(),
            },
        )
    db.changed("handover", wanted)
    return handover_id


@dataclass(slots=True)
class HandoverView:
    id: int
    courier_name: str
    clerk_name: str
    signature: str
    created: str
    items: list[tuple[str, str, bool]]  # (code, grouped, recorded by the courier)


async def handover_view(db: Database, user: CurrentUser, handover_id: int) -> HandoverView:
    async with db.read() as conn:
        row = await repository.handover(conn, handover_id)
        if row is None or (user.role == "clerk" and row.unit_id != user.unit_id):
            raise NotFoundException(f"No handover {handover_id} at your unit.")
        names = await shipments_repo.user_names(conn, [f"courier:{row.courier_id}", f"clerk:{row.clerk_id}"])
        done = await repository.recorded_with(conn, row.codes, row.signature)
    return HandoverView(
        id=row.id,
        courier_name=_shown(names, f"courier:{row.courier_id}"),
        clerk_name=_shown(names, f"clerk:{row.clerk_id}"),
        signature=row.signature,
        created=local(row.created_at),
        items=[(c, codes.group(c), c in done) for c in row.codes],
    )


def _shown(names: dict[str, shipments_repo.UserName], actor: str) -> str:
    name = names.get(actor)
    return name.shown if name else ""


async def pending_for_courier(db: Database, user: CurrentUser) -> list[PendingHandover]:
    """What the courier's phone asks for: handovers waiting for its signed events."""
    async with db.read() as conn:
        rows = await repository.handovers_for(conn, user.id)
        open_codes = await repository.still_held_by(conn, {c for r in rows for c in r.codes}, user.id)
    out = []
    for r in rows:
        waiting = [c for c in r.codes if c in open_codes]
        if waiting:
            out.append(
                PendingHandover(
                    id=r.id,
                    codes=waiting,
                    # the person who signed, and their account (an account made without a
                    # full name still names someone who can be found)
                    counterparty={
                        "name": r.clerk_name or r.clerk_login,
                        "role": "clerk",
                        "user_id": r.clerk_id,
                    },
                    signature=r.signature,
                    strokes=r.strokes,
                    created_at=r.created_at,
                )
            )
    return out
