"""What the one-stop shop's routes take and answer (docs/API.md "One-stop shop")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

Text200 = Annotated[str, Meta(max_length=200)]


class ProcedureIn(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=500)]
    field: Text200 = ""
    by_post: bool = True
    components: Annotated[list[Annotated[str, Meta(min_length=1, max_length=200)]], Meta(max_length=50)] = []
    fee_vnd: Annotated[int, Meta(ge=0, le=10**12)] = 0


class ProcedureOut(Struct):
    code: str
    name: str
    field: str
    by_post: bool
    components: list[str]
    fee_vnd: int


class Catalogue(Struct):
    unit: str
    procedures: list[ProcedureOut]


class CatalogueImported(Struct):
    unit: str
    procedures: int
    replaced: int


class RegisterImported(Struct):
    unit: str
    period_start: date
    period_end: date
    rows: int
    received_by_post: int
    returned_by_post: int
    replaced: bool
    seconds: float


class RegisterInfo(Struct):
    period_start: date
    period_end: date
    rows: int
    filename: str
    imported_at: datetime


class Registers(Struct):
    unit: str
    registers: list[RegisterInfo]


class RuleIn(Struct, forbid_unknown_fields=True):
    criterion: Literal["a", "b", "c"]
    # decimals as text, so nothing passes through a float: "0.27" (%), "0.5" (points)
    at_least_pct: Annotated[str, Meta(pattern=r"^[0-9]{1,3}([.,][0-9]{1,2})?$")]
    points: Annotated[str, Meta(pattern=r"^[0-9]{1,3}([.,][0-9]{1,2})?$")]


class RulesIn(Struct, forbid_unknown_fields=True):
    effective_from: date
    rules: Annotated[list[RuleIn], Meta(max_length=60)]


class RuleOut(Struct):
    criterion: str
    at_least_pct: str
    points: str


class RuleSet(Struct):
    province: str
    effective_from: date
    rules: list[RuleOut]


class ProvinceIn(Struct, forbid_unknown_fields=True):
    province: Annotated[str, Meta(min_length=1, max_length=100)]


class UnitProvince(Struct):
    unit: str
    province: str
