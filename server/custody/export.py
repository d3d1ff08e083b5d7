"""The custody export bundle of one shipment (CUSTODY.md §6)."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.timeutil import to_wire

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..keys import ServerKeys
from ..log import service as log_service
from ..shipments import repository
from ..shipments.service import parse_code
from . import enrolments


async def bundle(db: Database, keys: ServerKeys, user: CurrentUser, code_text: str) -> dict[str, Any]:
    code = parse_code(code_text)
    async with db.read() as conn:
        ship = await repository.visible(conn, user, code)
        stored = await repository.events_of(conn, ship.id)
    leaves = [(s.hash, s.log_index) for s in stored if s.log_index is not None]
    head, cosigs = await log_service.head_for_export(db, keys, max((i for _, i in leaves), default=-1) + 1)
    proofs = await log_service.proofs_for(db, leaves, head["size"]) if leaves else []
    bundle = {
        "v": 1,
        "shipment": {"code": ship.code, "kind": ship.kind, "state": ship.state, "head": ship.head},
        "events": [msgspec.json.decode(s.body) for s in stored],  # exactly as signed
        "received_at": {s.id: to_wire(s.received_at) for s in stored},
        "tree_head": head,
        "proofs": proofs,
        "keys": keys.public(),
        "witnesses": cosigs,
    }
    return await enrolments.complete_bundle(db, bundle)
