from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_201_CREATED
from msgspec import Meta, Struct

from shared.events import HEX64

from ..auth.security import PUBLIC, roles
from ..auth.service import CurrentUser
from ..deps import DB, Cfg, KeysDep
from ..errors import BadRequest, Conflict, NotFoundException
from . import service, tiles


class TreeHeadOut(Struct):
    size: int
    root: str
    timestamp: int
    sig: str


class InclusionOut(Struct):
    index: int
    size: int
    proof: list[str]


class ConsistencyOut(Struct):
    first: int
    second: int
    proof: list[str]


class WitnessIn(Struct, forbid_unknown_fields=True):
    size: Annotated[int, Meta(ge=0)]
    root: Annotated[str, Meta(pattern=HEX64)]
    timestamp: int
    sig: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{86}$")]
    public_key: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{43}$")]
    name: Annotated[str, Meta(min_length=1, max_length=200)]


class WitnessOut(Struct):
    size: int
    witness_id: int


class LogController(Controller):
    path = "/api/v1/log"
    tags = ["log"]

    @get("/head", operation_id="logHead", opt=PUBLIC)
    async def head(self, db: DB, keys: KeysDep) -> TreeHeadOut:
        return TreeHeadOut(**await service.signed_head(db, keys))

    @get("/inclusion", operation_id="logInclusion", opt=PUBLIC, raises=[NotFoundException])
    async def inclusion(
        self,
        db: DB,
        leaf: Annotated[str, Parameter(pattern=HEX64, description="the event hash (hex)")],
        size: Annotated[int | None, Parameter(ge=1, description="tree size; default: the current")] = None,
    ) -> InclusionOut:
        return InclusionOut(**await service.inclusion(db, leaf, size))

    @get("/consistency", operation_id="logConsistency", opt=PUBLIC)
    async def consistency(
        self, db: DB, first: Annotated[int, Parameter(ge=1)], second: Annotated[int, Parameter(ge=1)]
    ) -> ConsistencyOut:
        return ConsistencyOut(**await service.consistency(db, first, second))

    @get(
        "/checkpoint",
        operation_id="logCheckpoint",
        opt=PUBLIC,
        media_type="text/plain; charset=utf-8",
        description="The newest tree head as a C2SP checkpoint (signed note, Ed25519); docs/API.md.",
    )
    async def checkpoint(self, db: DB, keys: KeysDep, settings: Cfg) -> Response[str]:
        note = await service.checkpoint(db, keys, tiles.origin_of(settings.base_url))
        return Response(
            note,
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": tiles.CHECKPOINT_CACHE},
        )

    @get(
        "/tile/{rest:path}",
        operation_id="logTile",
        opt=PUBLIC,
        media_type="application/octet-stream",
        raises=[NotFoundException],
        description=(
            "C2SP tlog-tiles: tile/<L>/<N>[.p/<W>] (256 hashes of 32 bytes) and "
            "tile/entries/<N>[.p/<W>] (the leaves, uint16 length-prefixed); docs/API.md."
        ),
    )
    async def tile(self, db: DB, rest: str) -> Response[bytes]:
        try:
            t = tiles.parse_tile_path(rest.lstrip("/"))
        except tiles.BadTilePath as exc:
            raise BadRequest(str(exc)) from None
        body = await service.tile(db, t)
        return Response(
            body,
            media_type="application/octet-stream",
            headers={"Cache-Control": tiles.FULL_CACHE if t.full else tiles.PARTIAL_CACHE},
        )

    @post(
        "/witness",
        status_code=HTTP_201_CREATED,
        operation_id="witnessHead",
        opt=roles("clerk"),
        raises=[NotFoundException, Conflict],
    )
    async def witness(
        self, data: JSONBody[WitnessIn], request: Request[CurrentUser, Any, Any], db: DB
    ) -> WitnessOut:
        out = await service.cosign(
            db,
            request.user.unit_id,
            data.name,
            data.public_key,
            data.size,
            data.root,
            data.timestamp,
            data.sig,
        )
        return WitnessOut(**out)
