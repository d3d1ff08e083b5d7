"""The custody export bundle of one shipment (CUSTODY.md §6)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from shared.pages import encode_file, files_named, pages_problem
from shared.timeutil import to_wire

from ..auth.service import CurrentUser
from ..db.engine import Database
from ..keys import ServerKeys
from ..log import service as log_service
from ..shipments import repository
from ..shipments.service import parse_code
from . import attachments, enrolments


async def _files(root: Path, events: list[dict[str, Any]]) -> dict[str, str]:
    """The digitised pages' files (PDF, pages) named by the events' `data.pages` (CUSTODY.md §4.1)."""
    out: dict[str, str] = {}
    for ev in events:
        pages = (ev.get("data") or {}).get("pages")
        if not isinstance(pages, dict) or pages_problem(pages) is not None:
            continue
        for _, sha in files_named(pages):
            path = attachments.path_for(root, sha)
            if sha not in out and path.exists():
                out[sha] = encode_file(await asyncio.to_thread(path.read_bytes))
    return out


async def bundle(
    db: Database, keys: ServerKeys, user: CurrentUser, code_text: str, *, files_root: Path | None = None
) -> dict[str, Any]:
    """The bundle; with `files_root`, also the digitised pages' files under `files`."""
    code = parse_code(code_text)
    async with db.read() as conn:
        ship = await repository.visible(conn, user, code)
        stored = await repository.events_of(conn, ship.id)
    leaves = [(s.hash, s.log_index) for s in stored if s.log_index is not None]
    head, cosigs = await log_service.head_for_export(db, keys, max((i for _, i in leaves), default=-1) + 1)
    proofs = await log_service.proofs_for(db, leaves, head["size"]) if leaves else []
    bundle: dict[str, Any] = {
        "v": 1,
        "shipment": {"code": ship.code, "kind": ship.kind, "state": ship.state, "head": ship.head},
        "events": [msgspec.json.decode(s.body) for s in stored],  # exactly as signed
        "received_at": {s.id: to_wire(s.received_at) for s in stored},
        "tree_head": head,
        "proofs": proofs,
        "keys": keys.public(),
        "witnesses": cosigs,
    }
    if files_root is not None:
        bundle["files"] = await _files(files_root, bundle["events"])
    return await enrolments.complete_bundle(db, bundle)
