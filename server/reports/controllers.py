from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import Parameter, QueryParameter

from ..auth.security import roles
from ..auth.service import CurrentUser
from ..deps import DB
from ..openapi import BINARY, also_as
from . import service
from .csv import XLSX_TYPE, file_name, summary_csv, summary_xlsx
from .service import Summary

# a clerk: only a one-stop shop's, and only its own unit's report (reports.service.summary)
REPORT_READERS = ("dispatcher", "admin", "auditor", "clerk")


def _download(body: bytes, media_type: str, name: str) -> Response[bytes]:
    # the media type without a charset: Litestar adds `; charset=utf-8` to text types itself
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def csv_response(s: Summary, lang: str = "vi") -> Response[bytes]:
    return _download(summary_csv(s, lang), "text/csv", file_name(s, "csv"))


def xlsx_response(s: Summary, lang: str = "vi") -> Response[bytes]:
    return _download(summary_xlsx(s, lang), XLSX_TYPE, file_name(s, "xlsx"))


def export_response(s: Summary, format_: str | None, lang: str = "vi") -> Response[bytes] | None:
    if format_ == "csv":
        return csv_response(s, lang)
    if format_ == "xlsx":
        return xlsx_response(s, lang)
    return None


class ReportController(Controller):
    path = "/api/v1/reports"
    tags = ["reports"]

    @get(
        "/summary",
        operation_id="reportSummary",
        opt=roles(*REPORT_READERS),
        # the return annotation would document `oneOf [Summary, {}]`; the JSON answer is a Summary
        responses={
            200: ResponseSpec(
                Summary, description="the summary; `format=csv` or `format=xlsx` for a spreadsheet"
            )
        },
        operation_class=also_as({"text/csv": Schema(type=OpenAPIType.STRING), XLSX_TYPE: BINARY}),
    )
    async def summary(
        self,
        request: Request[CurrentUser, Any, Any],
        db: DB,
        start: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
        end: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
        unit: Annotated[str | None, Parameter(max_length=40)] = None,
        format_: Annotated[Literal["json", "csv", "xlsx"], QueryParameter(name="format")] = "json",
    ) -> Summary | Response[bytes]:
        s = await service.summary(db, service.window(start, end), unit, request.user)
        return export_response(s, format_) or s
