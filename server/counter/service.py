"""Counter reception (tiếp nhận hồ sơ tại quầy) and results collected at the counter (issue 18).

A postal clerk at a post-office counter, or at the one-stop shop's desk, receives a dossier
from the citizen: the procedure from the destination shop's catalogue (or typed, "other"),
its components ticked against the checklist, the fee, the citizen's signature drawn on
screen. It becomes a submission with channel "counter" whose server-signed `registered`
event names the citizen and carries all of that (CUSTODY.md §3); the clerk's unit holds it
until a courier picks it up, and it travels as any other.

Missing components: the dossier is **not** refused (the courier's pickup records what was
received the same way), but the clerk must choose "received with missing components"
explicitly; without that choice the reception is refused naming the missing papers.

A result handed to the citizen at the counter ends its chain with a server-signed
`collected` event: the person, their signature, and the last 4 digits of their ID card
checked against the record. A mismatch is refused unless the clerk gives the reason to hand
it over anyway; then the event says why (`data.identity.override`) and is flagged
`identity_mismatch`, as a courier's delivery is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from shared import codes, lifecycle
from shared.lifecycle import EventType
from shared.timeutil import utcnow

from ..auth.service import CurrentUser
from ..console import catalog
from ..console.service import VN
from ..custody import attachments as attachment_store
from ..custody.service import ContentProblem, append_server_event, lock_shipments
from ..db.engine import Database
from ..errors import BadRequest, Conflict, PermissionDeniedException, Unprocessable
from ..keys import ServerKeys
from ..shipments import repository as shipments_repo
from ..shipments import service as shipments
from ..shipments.schemas import Party, ShipmentCreate, ShipmentCreated
from ..shipments.service import CounterIntake

COUNTER_STAFF = ("clerk",)  # shared/lifecycle.py: a clerk records `collected`
MAX_SIGNATURE_PNG = 2 * 1024 * 1024
SIGNATURE_LIMITS = {"image/png": MAX_SIGNATURE_PNG, "application/json": 1024 * 1024}
MAX_COMPONENTS = 50
MAX_NOTE = 500


def _text(form: dict[str, Any], key: str, limit: int = 200) -> str:
    value = str(form.get(key, "") or "").strip()
    if len(value) > limit:
        raise BadRequest(f"{key}: tối đa {limit} ký tự. ({key}: at most {limit} characters.)")
    return value


def _lines(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if x.strip()]


def _last4(value: str, what: str) -> str:
    if len(value) != 4 or not value.isdigit():
        raise BadRequest(
            f"{what}: ghi đúng 4 số cuối của CCCD, ví dụ 1234. "
            f"({what}: the last 4 digits of the ID card, e.g. 1234.)"
        )
    return value


def _fee(text: str) -> int:
    cleaned = text.replace(".", "").replace(",", "").replace(" ", "") or "0"
    if not cleaned.isdigit() or len(cleaned) > 13:
        raise BadRequest(
            "Phí, lệ phí là số đồng nguyên, ví dụ 50000. (The fee is a whole number of đồng, e.g. 50000.)"
        )
    return int(cleaned)


async def store_signature(
    db: Database, root: Path, user: CurrentUser, png: bytes, strokes_json: bytes
) -> dict[str, Any]:
    """Keep the signature drawn on screen as the courier app's is kept: the PNG and the strokes
    JSON as attachments addressed by their SHA-256 (CUSTODY.md §4). Returns `attachments`."""
    attachment_store.check_content("image/png", png, SIGNATURE_LIMITS)
    attachment_store._check_image(png, "image/png")
    sig = hashlib.sha256(png).hexdigest()
    await attachment_store.store(db, root, sig, "image/png", png, user.id)
    if strokes_json:
        attachment_store.check_content("application/json", strokes_json, SIGNATURE_LIMITS)
        strokes = hashlib.sha256(strokes_json).hexdigest()
        await attachment_store.store(db, root, strokes, "application/json", strokes_json, user.id)
    return {"signature": sig, "photos": []}


# ---- the checklist --------------------------------------------------------------------------


@dataclass(slots=True)
class Checklist:
    """What the clerk checks the dossier against: the catalogue's entry, or typed ("other")."""

    procedure_code: str  # "" for "other"
    procedure: str
    field: str
    components: list[str]  # the checklist
    fee_vnd: int
    from_catalogue: bool


async def checklist(db: Database, dest_unit: str, procedure_code: str, form: dict[str, Any]) -> Checklist:
    if procedure_code:
        from ..shop import service as shop

        p = await shop.procedure_for_registration(db, dest_unit, procedure_code)
        return Checklist(p.code, p.name, p.field, list(p.components), p.fee_vnd, True)
    name = _text(form, "procedure", 300)
    if not name:
        raise BadRequest(
            "Chọn thủ tục trong danh mục, hoặc chọn «Khác» và ghi tên thủ tục. "
            "(Pick a procedure from the catalogue, or pick “other” and type its name.)"
        )
    comps = _lines(_text(form, "components", 10_000))
    return Checklist("", name, _text(form, "field"), comps, _fee(_text(form, "fee_vnd", 20)), False)


def tick(check: Checklist, received: list[str], form: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(received, missing) from the ticked boxes; with "other", the typed checklist is what was
    handed in unless boxes were ticked, and typed missing papers are named as missing."""
    received = [r.strip() for r in received if r.strip()]
    if check.from_catalogue:
        strangers = [r for r in received if r not in check.components]
        if strangers:
            raise BadRequest(
                f"«{strangers[0]}» không có trong danh sách thành phần của thủ tục này. "
                f"(“{strangers[0]}” is not a component of this procedure.)"
            )
        got = [c for c in check.components if c in received]
        missing = [c for c in check.components if c not in received]
    else:
        got = [c for c in check.components if c in received] if received else list(check.components)
        missing = [c for c in check.components if c not in got]
        missing += [m for m in _lines(_text(form, "missing_components", 10_000)) if m not in missing]
    if len(got) + len(missing) > MAX_COMPONENTS:
        raise BadRequest(f"Tối đa {MAX_COMPONENTS} thành phần. (At most {MAX_COMPONENTS} components.)")
    if not got:
        raise Unprocessable(
            "Chưa đánh dấu thành phần nào đã nhận: đánh dấu các giấy tờ công dân nộp. "
            "(No component is ticked as received: tick the papers the citizen handed in.)"
        )
    return got, missing


# ---- reception ------------------------------------------------------------------------------


def _due(form: dict[str, Any]) -> datetime:
    try:
        day = date.fromisoformat(_text(form, "due_date", 20))
    except ValueError:
        raise BadRequest(
            "Ghi ngày hẹn trả kết quả (hạn trả), ví dụ 2026-12-20. "
            "(Give the date the result is promised for, e.g. 2026-12-20.)"
        ) from None
    try:
        at = time.fromisoformat(_text(form, "due_time", 10) or "17:00")
    except ValueError:
        raise BadRequest("Giờ hẹn trả ghi như 17:00. (Give the time like 17:00.)") from None
    return datetime.combine(day, at, VN)


def _citizen(form: dict[str, Any]) -> dict[str, Any]:
    name = _text(form, "citizen_name")
    if not name:
        raise BadRequest("Ghi họ tên người nộp hồ sơ. (Give the name of the person handing the dossier in.)")
    party: dict[str, Any] = {
        "name": name,
        "id_last4": _last4(_text(form, "citizen_id_last4", 10), "citizen_id_last4"),
    }
    province, commune = _text(form, "citizen_province"), _text(form, "citizen_commune")
    if province and province not in catalog.province_names():
        raise BadRequest(f"{province!r} không phải một trong 34 tỉnh, thành. (Not one of the 34 provinces.)")
    if commune and commune not in catalog.communes_of(province):
        raise BadRequest(f"{commune!r} không thuộc {province or 'tỉnh nào'}. (Not a commune of {province}.)")
    for key in ("phone", "address"):
        if value := _text(form, f"citizen_{key}", 300):
            party[key] = value
    if province:
        party["province"] = province
    if commune:
        party["commune"] = commune
    return party


@dataclass(slots=True)
class Received:
    created: ShipmentCreated
    procedure: str
    components: list[str]
    missing: list[str]
    fee_vnd: int


async def receive(
    db: Database,
    keys: ServerKeys,
    root: Path,
    base_url: str,
    user: CurrentUser,
    form: dict[str, Any],
    ticked: list[str],
    signature_png: bytes,
    strokes_json: bytes,
) -> Received:
    """Register a dossier handed in at the counter. Every check runs before anything is kept."""
    if user.role not in COUNTER_STAFF or user.unit_id is None:
        raise PermissionDeniedException(
            "Chỉ cán bộ tiếp nhận của một đơn vị nhận hồ sơ tại quầy. "
            "(Only a unit's clerk receives dossiers at the counter.)"
        )
    # the dossier goes to the shop chosen; at the shop's own desk, to that shop
    dest = _text(form, "dest_unit", 40) or (user.unit_code if user.unit_kind == "one_stop_shop" else "")
    if not dest:
        raise BadRequest(
            "Chọn Bộ phận Một cửa nhận hồ sơ này. (Pick the one-stop shop this dossier goes to.)"
        )
    check = await checklist(db, dest, _text(form, "procedure_code", 100), form)
    got, missing = tick(check, ticked, form)
    incomplete = str(form.get("incomplete", "")) in ("1", "on", "true")
    if missing and not incomplete:
        raise Unprocessable(
            f"Hồ sơ còn thiếu: {'; '.join(missing)}. Hướng dẫn công dân bổ sung, hoặc chọn "
            "«Tiếp nhận hồ sơ còn thiếu thành phần» để nhận như vậy. "
            f"(Missing: {'; '.join(missing)}. Ask the citizen to complete the dossier, or choose "
            "“received with missing components” to receive it as it is.)"
        )
    citizen = _citizen(form)
    fee = check.fee_vnd
    if not signature_png:
        raise BadRequest(
            "Công dân chưa ký vào khung chữ ký. (The citizen has not signed in the signature box.)"
        )
    async with db.read() as conn:
        dest_id = await shipments_repo.unit_id(conn, dest)
        dest_name = await shipments_repo.unit_name(conn, dest_id) if dest_id is not None else None
    if not dest_name:
        raise Unprocessable(f"Không có đơn vị {dest!r}. (No unit {dest!r}.)")
    data = ShipmentCreate(
        kind="submission",
        due_at=_due(form),
        dossier_ref=_text(form, "dossier_ref", 100),
        procedure=check.procedure,
        field=check.field,
        sender=Party(**citizen),
        recipient=Party(name=dest_name),
        fee_vnd=fee,
        components=got,
        dest_unit=dest,
    )
    attachments = await store_signature(db, root, user, signature_png, strokes_json)
    intake = CounterIntake(
        data={
            "channel": "counter",
            "procedure_code": check.procedure_code,
            "components": got,
            "missing_components": missing,
            "incomplete": bool(missing),
            "fee_vnd": fee,
        },
        counterparty={"name": citizen["name"], "role": "citizen", "id_last4": citizen["id_last4"]},
        attachments=attachments,
    )
    created = await shipments.create(db, keys, base_url, user, data, counter=intake)
    return Received(created, check.procedure, got, missing, fee)


# ---- a result collected at the counter -------------------------------------------------------


def _may_hand_over(user: CurrentUser, ship: Any) -> str | None:
    """Why this clerk cannot hand this result over, or None."""
    if ship.kind != "result":
        return "Chỉ kết quả mới được trả tại quầy. (Only a result is collected at the counter.)"
    if ship.state == lifecycle.State.REGISTERED and ship.unit_id == user.unit_id:
        return None  # the shop's own result, never sent out
    if ship.state == lifecycle.State.IN_CUSTODY and ship.custodian_role == "clerk":
        return None  # brought to this counter by a courier
    if ship.state in lifecycle.FINAL_STATES:
        return f"Bưu gửi đã kết thúc ({ship.state}). (The shipment is {ship.state}, a final state.)"
    return (
        "Kết quả này không ở quầy của bạn: bưu tá đang giữ hoặc chưa bàn giao. "
        "(This result is not at your counter: a courier holds it or it was not handed over.)"
    )


async def collect(
    db: Database,
    keys: ServerKeys,
    root: Path,
    user: CurrentUser,
    code_text: str,
    form: dict[str, Any],
    signature_png: bytes,
    strokes_json: bytes,
) -> tuple[str, list[str]]:
    """Record `collected`; returns (head, flags)."""
    if user.role not in COUNTER_STAFF or user.unit_id is None:
        raise PermissionDeniedException(
            "Chỉ cán bộ tiếp nhận trả kết quả tại quầy. (Only a clerk hands results over at the counter.)"
        )
    code = shipments.parse_code(code_text)
    name = _text(form, "name")
    if not name:
        raise BadRequest("Ghi họ tên người nhận kết quả. (Give the name of the person collecting.)")
    role = _text(form, "role", 20) or "citizen"
    if role not in ("citizen", "proxy"):
        raise BadRequest("Người nhận là công dân hoặc người được ủy quyền. (citizen or proxy.)")
    last4 = _last4(_text(form, "id_last4", 10), "id_last4")
    note = _text(form, "note", MAX_NOTE)
    override = _text(form, "override", MAX_NOTE)
    if role == "proxy" and not note:
        raise BadRequest(
            "Người được ủy quyền: ghi giấy ủy quyền của ai. (A proxy: say whose authorisation letter.)"
        )
    if not signature_png:
        raise BadRequest("Người nhận chưa ký vào khung chữ ký. (The person collecting has not signed.)")
    async with db.read() as conn:
        row = await shipments_repo.visible(conn, user, code)  # 404 unknown, 403 not theirs
    if (why := _may_hand_over(user, row)) is not None:
        raise Conflict(why)
    expected = (row.recipient or {}).get("id_last4")
    mismatch = bool(expected) and expected != last4
    if mismatch and not override:
        raise Unprocessable(
            "4 số cuối CCCD không khớp hồ sơ: hỏi lại, xem giấy tờ, hoặc ghi lý do vẫn trả kết quả. "
            "(The ID card's last 4 digits do not match the record: ask again, check the papers, "
            "or give the reason to hand it over anyway.)"
        )
    attachments = await store_signature(db, root, user, signature_png, strokes_json)
    identity: dict[str, Any] = {"method": "proxy" if role == "proxy" else "id_last4"}
    if note:
        identity["note"] = note
    if mismatch:
        identity["override"] = override
    now = utcnow()
    async with db.write() as conn:
        ship = (await lock_shipments(conn, [code])).get(code)
        assert ship is not None
        if ship["head"] != row.head:
            raise Conflict("Bưu gửi vừa thay đổi; mở lại trang. (The shipment just changed; open it again.)")
        try:
            event = await append_server_event(
                conn,
                keys.event,
                ship,
                event_type=EventType.COLLECTED,
                role=user.role,
                actor=user.actor,
                data={"identity": identity, "unit": user.unit_code},
                counterparty={"name": name, "role": role, "id_last4": last4},
                attachments=attachments,
                check_content=True,
                now=now,
                merkle_log=db.merkle_log,
            )
        except lifecycle.IllegalTransition as exc:
            raise Conflict(str(exc)) from None
        except ContentProblem as exc:
            raise Unprocessable(str(exc)) from None
    db.changed("collected", [code])
    return event.hash, ["identity_mismatch"] if mismatch else []


def grouped(code: str) -> str:
    return codes.group(code)
