"""The custody export bundle of one shipment (CUSTODY.md §6)."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select

from shared.timeutil import to_wire

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..db.models import custody_events
from ..keys import ServerKeys
from ..log import service as log_service
from ..shipments.service import _load_visible, parse_code
from . import enrolments


async def bundle(db: Database, keys: ServerKeys, user: CurrentUser, code_text: str) -> dict[str, Any]:
    code = parse_code(code_text)
    async with db.read() as conn:
        ship = await _load_visible(conn, user, code)
        rows = (
            await conn.execute(
                select(
                    custody_events.c.id,
                    custody_events.c.body,
                    custody_events.c.received_at,
                    custody_events.c.hash,
                    custody_events.c.log_index,
                )
                .where(custody_events.c.shipment_id == ship.id)
                .order_by(custody_events.c.seq)
            )
        ).all()
    leaves = [(r.hash, r.log_index) for r in rows if r.log_index is not None]
    head, cosigs = await log_service.head_for_export(db, keys, max((i for _, i in leaves), default=-1) + 1)
    proofs = await log_service.proofs_for(db, leaves, head["size"]) if leaves else []
    bundle = {
        "v": 1,
        "shipment": {"code": ship.code, "kind": ship.kind, "state": ship.state, "head": ship.head},
        "events": [msgspec.json.decode(r.body) for r in rows],
        "received_at": {r.id: to_wire(r.received_at) for r in rows},
        "tree_head": head,
        "proofs": proofs,
        "keys": keys.public(),
        "witnesses": cosigs,
    }
    return await enrolments.complete_bundle(db, bundle)
