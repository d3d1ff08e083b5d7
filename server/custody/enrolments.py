"""Device enrolment records in the log and in the export bundle (docs/CUSTODY.md, "Enrolment").

`record` runs inside the transaction that enrols a device: the server signs a record
binding the key to the courier, appends its hash to the Merkle log and keeps the
record, so the key is in the log before any event it signs. `complete_bundle` adds the
records of a bundle's device keys, with their inclusion proofs in the bundle's tree head.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.enrolment import make_enrolment
from shared.timeutil import to_wire

from ..db.engine import Database
from ..db.models import device_enrolments
from ..keys import ServerKeys
from ..log import service as log_service

BUNDLE_VERSION = 2
RECEIVED_AT_STATUS = "unverified"  # the server's clock, neither signed nor committed in the log


async def record(
    conn: AsyncConnection, keys: ServerKeys, device_id: int, actor: str, public_key: str, now: datetime
) -> dict[str, Any]:
    """Sign, log and keep the enrolment record of a newly enrolled device key."""
    rec = make_enrolment(keys.event, public_key, actor, to_wire(now))
    index = await log_service.append(conn, [bytes.fromhex(rec["hash"])])
    await conn.execute(
        insert(device_enrolments).values(
            device_id=device_id,
            public_key=public_key,
            hash=rec["hash"],
            log_index=index,
            body=msgspec.json.encode(rec).decode(),
            created_at=now,
        )
    )
    return rec


async def complete_bundle(db: Database, bundle: dict[str, Any]) -> dict[str, Any]:
    """Version 2 of the bundle: the enrolment records of its device keys, with proofs."""
    wanted = {ev["device"] for ev in bundle["events"]}
    size = int(bundle["tree_head"]["size"])
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(device_enrolments.c.hash, device_enrolments.c.log_index, device_enrolments.c.body)
                .where(device_enrolments.c.public_key.in_(wanted), device_enrolments.c.log_index < size)
                .order_by(device_enrolments.c.log_index)
            )
        ).all()
    proofs = await log_service.proofs_for(db, [(r.hash, r.log_index) for r in rows], size) if rows else []
    return {
        **bundle,
        "v": BUNDLE_VERSION,
        "enrolments": [msgspec.json.decode(r.body) for r in rows],
        "proofs": [*bundle["proofs"], *proofs],
        "received_at_status": RECEIVED_AT_STATUS,
    }
