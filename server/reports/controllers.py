from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import Parameter, QueryParameter

from ..auth.security import roles
from ..deps import DB
from ..openapi import also_as
from . import service
from .csv import summary_csv
from .service import Summary

REPORT_READERS = ("dispatcher", "admin", "auditor")


def csv_response(s: Summary, lang: str = "vi") -> Response[bytes]:
    name = f"bao-cao-{s.start.date().isoformat()}-{s.end.date().isoformat()}.csv"
    return Response(
        summary_csv(s, lang),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class ReportController(Controller):
    path = "/api/v1/reports"
    tags = ["reports"]

    @get(
        "/summary",
        operation_id="reportSummary",
        opt=roles(*REPORT_READERS),
        # the return annotation would document `oneOf [Summary, {}]`; the JSON answer is a Summary
        responses={200: ResponseSpec(Summary, description="the summary; `format=csv` for a spreadsheet")},
        operation_class=also_as({"text/csv": Schema(type=OpenAPIType.STRING)}),
    )
    async def summary(
        self,
        db: DB,
        start: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
        end: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
        unit: Annotated[str | None, Parameter(max_length=40)] = None,
        format_: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
    ) -> Summary | Response[bytes]:
        s = await service.summary(db, service.window(start, end), unit)
        return csv_response(s) if format_ == "csv" else s
