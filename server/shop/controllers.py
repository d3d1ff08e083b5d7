"""The one-stop shop's routes (docs/API.md "One-stop shop"; formats in docs/REGISTER.md)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, put
from litestar.params import Parameter, QueryParameter

from ..auth.security import STAFF, roles
from ..auth.service import CurrentUser
from ..deps import DB
from ..errors import Conflict, NotFoundException, TooLarge, Unprocessable
from . import service
from .schemas import (
    Catalogue,
    CatalogueImported,
    ProcedureIn,
    ProcedureOut,
    ProvinceIn,
    RegisterImported,
    Registers,
    RuleSet,
    RulesIn,
    UnitProvince,
)

Req = Request[CurrentUser, Any, Any]
UnitCode = Annotated[str, Parameter(max_length=40, pattern=r"^[^\x00]+$")]
ProcCode = Annotated[str, Parameter(max_length=100, pattern=r"^[^\x00/]+$")]
EDITORS = ("clerk", "dispatcher", "admin")
MAX_FILE = 32 * 1024 * 1024  # a 100,000-row register is ~10 MB as CSV


async def file_body(request: Req) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE:
        raise TooLarge(f"Tệp tối đa {MAX_FILE // 1024 // 1024} MiB. (A file is at most 32 MiB.)")
    return await request.body()


class ShopController(Controller):
    path = "/api/v1"
    tags = ["one-stop shop"]

    @get(
        "/units/{unit:str}/procedures",
        operation_id="listProcedures",
        opt=roles(*STAFF),
        raises=[NotFoundException],
    )
    async def procedures(self, db: DB, unit: UnitCode) -> Catalogue:
        return await service.catalogue(db, unit)

    @put(
        "/units/{unit:str}/procedures",
        operation_id="importProcedures",
        opt=roles(*EDITORS),
        raises=[NotFoundException, Unprocessable, TooLarge],
        request_max_body_size=MAX_FILE,
        status_code=200,
    )
    async def import_procedures(self, request: Req, db: DB, unit: UnitCode) -> CatalogueImported:
        """The body is a CSV or XLSX file; it replaces the unit's whole catalogue."""
        return await service.import_catalogue(db, request.user, unit, await file_body(request))

    @put(
        "/units/{unit:str}/procedures/{code:str}",
        operation_id="saveProcedure",
        opt=roles(*EDITORS),
        raises=[NotFoundException, Unprocessable],
        status_code=200,
    )
    async def save_procedure(
        self, request: Req, db: DB, unit: UnitCode, code: ProcCode, data: ProcedureIn
    ) -> ProcedureOut:
        await service.save_procedure(db, request.user, unit, code, data)
        return await service.procedure_for_registration(db, unit, code.strip())

    @delete(
        "/units/{unit:str}/procedures/{code:str}",
        operation_id="deleteProcedure",
        opt=roles(*EDITORS),
        raises=[NotFoundException, Unprocessable],
        status_code=204,
    )
    async def delete_procedure(self, request: Req, db: DB, unit: UnitCode, code: ProcCode) -> None:
        await service.delete_procedure(db, request.user, unit, code)

    @get(
        "/units/{unit:str}/registers",
        operation_id="listRegisters",
        opt=roles(*STAFF),
        raises=[NotFoundException],
    )
    async def registers(self, db: DB, unit: UnitCode) -> Registers:
        return await service.registers(db, unit)

    @put(
        "/units/{unit:str}/register",
        operation_id="importRegister",
        opt=roles(*EDITORS),
        raises=[NotFoundException, Unprocessable, Conflict, TooLarge],
        request_max_body_size=MAX_FILE,
        status_code=200,
    )
    async def import_register(
        self,
        request: Req,
        db: DB,
        unit: UnitCode,
        start: Annotated[str, QueryParameter(name="from", max_length=10)],
        end: Annotated[str, QueryParameter(name="to", max_length=10)],
        filename: Annotated[str, Parameter(max_length=200)] = "",
    ) -> RegisterImported:
        """The body is a CSV or XLSX file: the unit's dossiers received in [from, to]. It replaces
        that period's earlier import, or nothing at all if any row is wrong."""
        first, last = service.period(start, end)
        return await service.import_register(
            db, request.user, unit, first, last, await file_body(request), filename
        )

    @put(
        "/provinces/{province:str}/scoring",
        operation_id="setScoringRules",
        opt=roles("admin"),
        raises=[Unprocessable],
        status_code=200,
    )
    async def set_rules(
        self, request: Req, db: DB, province: Annotated[str, Parameter(max_length=100)], data: RulesIn
    ) -> RuleSet:
        return await service.set_rules(db, request.user, province, data)

    @get("/scoring", operation_id="listScoringRules", opt=roles(*STAFF))
    async def rules(self, db: DB) -> list[RuleSet]:
        return await service.rule_sets(db)

    @put(
        "/units/{unit:str}/province",
        operation_id="setUnitProvince",
        opt=roles("admin"),
        raises=[NotFoundException, Unprocessable],
        status_code=200,
    )
    async def set_province(self, db: DB, unit: UnitCode, data: ProvinceIn) -> UnitProvince:
        return UnitProvince(unit=unit, province=await service.set_province(db, unit, data.province))


__all__ = ["ShopController"]
