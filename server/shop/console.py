"""The console's pages for the one-stop shop: its catalogue (import, edit), its dossier
register (import per period), and the provinces' scoring rules (admin). Each form calls the
same service as the JSON API (server/shop/controllers.py)."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.response import Template

from shared.i18n import t

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..console import catalog
from ..console.pages import error_page, lang_of, page
from ..deps import DB
from ..errors import BadRequest
from . import service
from .controllers import MAX_FILE
from .schemas import ProcedureIn, RuleIn, RulesIn

Req = Request[CurrentUser, Any, Any]
SHOP_STAFF = ("clerk", "dispatcher", "admin")
READERS = ("clerk", "dispatcher", "admin", "auditor")
_RULE_LINE = re.compile(r"^\s*([abcABC])\s+([0-9]+(?:[.,][0-9]+)?)\s*%?\s+([0-9]+(?:[.,][0-9]+)?)\s*$")


async def _file(form: Any) -> tuple[bytes, str]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("Chọn một tệp CSV hoặc XLSX. (Choose a CSV or XLSX file.)")
    return await upload.read(), upload.filename or ""


def parse_rules(text: str) -> list[RuleIn]:
    """`a 10 1` per line: criterion, threshold in per cent, points."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _RULE_LINE.match(line)
        if m is None:
            raise BadRequest(
                f"Dòng {n}: {line.strip()!r} — ghi «tiêu chí ngưỡng% điểm», ví dụ «a 10 1». "
                f"(Line {n}: write “criterion threshold% points”, e.g. “a 10 1”.)"
            )
        pct, points = m.group(2).replace(",", "."), m.group(3).replace(",", ".")
        for value in (pct, points):
            if len(value.partition(".")[2]) > 2 or len(value.partition(".")[0]) > 3:
                raise BadRequest(f"Dòng {n}: tối đa 2 chữ số thập phân. (Line {n}: at most 2 decimals.)")
        out.append(RuleIn(criterion=m.group(1).lower(), at_least_pct=pct, points=points))  # type: ignore[arg-type]
    return out


class ShopConsole(Controller):
    path = "/console"
    tags = ["console"]
    include_in_schema = False
    exception_handlers = {HTTPException: error_page}

    async def _page(
        self, request: Req, db: DB, unit_code: str | None, status: int = 200, **ctx: Any
    ) -> Template:
        from ..console.service import all_units

        lang = lang_of(request)
        shops = [u for u in await all_units(db) if u.kind == "one_stop_shop"]
        code = unit_code or request.user.unit_code or (shops[0].code if shops else None)
        cat = await service.catalogue(db, code) if code else None
        regs = await service.registers(db, code) if code else None
        ctx.setdefault("flash", None)
        ctx.setdefault("error", None)
        return page(
            request,
            "shop.html",
            status=status,
            title=t("shop.title", lang),
            shops=shops,
            unit=code,
            can_pick=request.user.role in ("admin", "auditor"),
            catalogue=cat,
            registers=regs,
            fields=list(catalog.FIELDS),
            **ctx,
        )

    async def _after(self, request: Req, db: DB, unit: str, action: Any, done: Any) -> Template:
        try:
            result = await action()
        except HTTPException as exc:
            return await self._page(request, db, unit, status=exc.status_code, error=exc.detail)
        return await self._page(request, db, unit, flash=done(result))

    @get("/shop", operation_id="consoleShop", opt=roles(*READERS))
    async def shop_page(self, request: Req, db: DB, unit: str | None = None) -> Template:
        return await self._page(request, db, (unit or "")[:40] or None)

    @get("/shop/procedures.json", operation_id="consoleProcedures", opt=roles(*READERS))
    async def procedures_json(self, db: DB, unit: str = "") -> Response[Any]:
        """A unit's catalogue for the register form's procedure picker."""
        if not unit or len(unit) > 40:
            return Response({"unit": unit, "procedures": []})
        try:
            cat = await service.catalogue(db, unit)
        except HTTPException:
            return Response({"unit": unit, "procedures": []})
        return Response(cat, headers={"Cache-Control": "no-store"})

    @post("/shop/catalogue", operation_id="consoleImportCatalogue", opt=roles(*SHOP_STAFF), status_code=200,
          request_max_body_size=MAX_FILE)  # fmt: skip
    async def import_catalogue(self, request: Req, db: DB) -> Template:
        form = await request.form()
        unit = str(form.get("unit", ""))[:40]
        lang = lang_of(request)

        async def act() -> Any:
            await service.editable_unit(db, request.user, unit)
            body, _ = await _file(form)
            return await service.import_catalogue(db, request.user, unit, body)

        return await self._after(
            request,
            db,
            unit,
            act,
            lambda r: t("shop.imported_catalogue", lang, n=r.procedures, old=r.replaced),
        )

    @post("/shop/register", operation_id="consoleImportRegister", opt=roles(*SHOP_STAFF), status_code=200,
          request_max_body_size=MAX_FILE)  # fmt: skip
    async def import_register(self, request: Req, db: DB) -> Template:
        form = await request.form()
        unit = str(form.get("unit", ""))[:40]
        lang = lang_of(request)

        async def act() -> Any:
            await service.editable_unit(db, request.user, unit)
            start, end = service.period(str(form.get("from", "")), str(form.get("to", "")))
            body, name = await _file(form)
            return await service.import_register(db, request.user, unit, start, end, body, name)

        return await self._after(
            request,
            db,
            unit,
            act,
            lambda r: t(
                "shop.imported_register",
                lang,
                n=f"{r.rows:,}".replace(",", "."),
                start=r.period_start.strftime("%d/%m/%Y"),
                end=r.period_end.strftime("%d/%m/%Y"),
                s=r.seconds,
                replaced=t("shop.replaced", lang) if r.replaced else "",
            ),
        )

    @post("/shop/procedure", operation_id="consoleSaveProcedure", opt=roles(*SHOP_STAFF), status_code=200)
    async def save_procedure(self, request: Req, db: DB) -> Template:
        form = {k: str(v) for k, v in (await request.form()).items()}
        unit = form.get("unit", "")[:40]
        code = form.get("code", "").strip()

        async def act() -> Any:
            await service.editable_unit(db, request.user, unit)
            fee = form.get("fee_vnd", "").replace(".", "").replace(",", "").replace(" ", "") or "0"
            if not fee.isdigit() or int(fee) > 10**12:
                raise BadRequest("Phí: số đồng nguyên, ví dụ 50000. (The fee is whole đồng, e.g. 50000.)")
            name = form.get("name", "").strip()
            if not name or len(name) > 500:
                raise BadRequest("Tên thủ tục: 1–500 ký tự. (The procedure's name takes 1–500 characters.)")
            components = [c.strip() for c in form.get("components", "").splitlines() if c.strip()]
            if len(components) > 50 or any(len(c) > 200 for c in components):
                raise BadRequest(
                    "Tối đa 50 thành phần, mỗi thành phần 200 ký tự. (At most 50, 200 characters each.)"
                )
            data = ProcedureIn(
                name=name,
                field=form.get("field", "").strip()[:200],
                by_post=form.get("by_post") == "1",
                components=components,
                fee_vnd=int(fee),
            )
            return await service.save_procedure(db, request.user, unit, code, data)

        lang = lang_of(request)
        return await self._after(request, db, unit, act, lambda _: t("shop.saved", lang, code=code))

    @post(
        "/shop/procedure/delete",
        operation_id="consoleDeleteProcedure",
        opt=roles(*SHOP_STAFF),
        status_code=200,
    )
    async def delete_procedure(self, request: Req, db: DB) -> Template:
        form = await request.form()
        unit, code = str(form.get("unit", ""))[:40], str(form.get("code", ""))[:100]
        lang = lang_of(request)

        async def act() -> Any:
            await service.delete_procedure(db, request.user, unit, code)

        return await self._after(request, db, unit, act, lambda _: t("shop.deleted", lang, code=code))

    # ---- scoring rules (admin) ---------------------------------------------------------------

    async def _scoring(self, request: Req, db: DB, status: int = 200, **ctx: Any) -> Template:
        from ..console.service import all_units

        units = await all_units(db)
        ctx.setdefault("flash", None)
        ctx.setdefault("error", None)
        return page(
            request,
            "scoring.html",
            status=status,
            title=t("scoring.title", lang_of(request)),
            sets=await service.rule_sets(db),
            units=units,
            unit_provinces=await service.provinces(db, [u.id for u in units]),
            provinces=[p["name"] for p in catalog.provinces()],
            **ctx,
        )

    @get("/scoring", operation_id="consoleScoring", opt=roles("admin"))
    async def scoring_page(self, request: Req, db: DB) -> Template:
        return await self._scoring(request, db)

    @post("/scoring", operation_id="consoleSetScoring", opt=roles("admin"), status_code=200)
    async def set_scoring(self, request: Req, db: DB) -> Template:
        form = {k: str(v) for k, v in (await request.form()).items()}
        lang = lang_of(request)
        try:
            from datetime import date

            try:
                since = date.fromisoformat(form.get("effective_from", ""))
            except ValueError:
                raise BadRequest(
                    "Cho ngày áp dụng, ví dụ 2026-01-01. (Give the date it is in force from.)"
                ) from None
            data = RulesIn(effective_from=since, rules=parse_rules(form.get("rules", "")))
            saved = await service.set_rules(db, request.user, form.get("province", ""), data)
        except HTTPException as exc:
            return await self._scoring(request, db, status=exc.status_code, error=exc.detail, form=form)
        flash = t("scoring.saved", lang, p=saved.province, d=saved.effective_from.strftime("%d/%m/%Y"))
        return await self._scoring(request, db, flash=flash)

    @post("/scoring/province", operation_id="consoleSetProvince", opt=roles("admin"), status_code=200)
    async def set_province(self, request: Req, db: DB) -> Template:
        form = {k: str(v) for k, v in (await request.form()).items()}
        unit = form.get("unit", "")[:40]
        try:
            province = await service.set_province(db, unit, form.get("province", ""))
        except HTTPException as exc:
            return await self._scoring(request, db, status=exc.status_code, error=exc.detail)
        return await self._scoring(
            request, db, flash=t("scoring.province_saved", lang_of(request), u=unit, p=province)
        )
