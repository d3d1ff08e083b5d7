"""The summary as spreadsheets: CSV (UTF-8 with a BOM and CRLF, so Excel shows Vietnamese
text) and XLSX (openpyxl), from the same rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from shared.i18n import t

from .service import Summary, local_day

BOM = "\ufeff"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Row = list[Any]


def _num(value: float | int | None) -> str | float | int:
    return "" if value is None else value


def summary_rows(s: Summary, lang: str) -> Iterator[Row]:
    yield [t("report.csv.section", lang), t("report.csv.item", lang), t("report.csv.value", lang)]
    yield [t("report.window", lang), t("report.from", lang), s.start.isoformat()]
    yield [t("report.window", lang), t("report.to", lang), s.end.isoformat()]
    yield [t("report.window", lang), t("report.unit", lang), s.unit or t("report.all_units", lang)]
    yield [t("report.total", lang), "", s.total]
    for state, n in s.by_state.items():
        yield [t("report.by_state", lang), t(f"state.{state}", lang), n]
    for kind, n in s.by_kind.items():
        yield [t("report.by_kind", lang), t(f"kind.{kind}", lang), n]
    for field, n in s.by_field.items():
        yield [t("report.by_field", lang), field or t("report.no_field", lang), n]
    yield [t("report.on_time", lang), t("report.delivered", lang), s.delivered]
    yield [t("report.on_time", lang), t("report.delivered_on_time", lang), s.delivered_on_time]
    yield [t("report.on_time", lang), t("report.on_time_rate", lang), _num(s.on_time_rate)]
    yield [t("report.on_time", lang), t("report.late_open", lang), s.late_open]
    yield [t("report.times", lang), t("report.door_to_desk", lang), _num(s.door_to_desk.median_hours)]
    yield [t("report.times", lang), t("report.desk_to_door", lang), _num(s.desk_to_door.median_hours)]
    for reason, n in s.failed_reasons.items():
        yield [t("report.failed", lang), t(f"reason.{reason}", lang), n]
    yield [t("report.ratings", lang), t("report.rating_count", lang), s.ratings.count]
    yield [t("report.ratings", lang), t("report.rating_avg", lang), _num(s.ratings.average)]
    for score, n in s.ratings.by_score.items():
        yield [t("report.ratings", lang), f"{score}★", n]


def hoso_rows(s: Summary, lang: str) -> Iterator[Row]:
    yield [t("report.hoso_own", lang)]
    yield [
        t("report.unit", lang),
        t("report.unit_name", lang),
        t("report.c1", lang),
        t("report.c2", lang),
        t("report.c2_total", lang),
        t("report.c2_pct", lang),
        t("report.c3", lang),
        t("report.c3_total", lang),
        t("report.c3_pct", lang),
    ]
    for u in s.units:
        yield [
            u.unit,
            u.name,
            t("report.yes", lang) if u.has_postal_traffic else t("report.no", lang),
            u.dossiers_received_by_post,
            u.dossiers_received_total,
            _num(u.dossiers_received_by_post_pct),
            u.results_returned_by_post,
            u.results_total,
            _num(u.results_returned_by_post_pct),
        ]


def criteria_rows(s: Summary, lang: str) -> Iterator[Row]:
    """One row per one-stop shop and criterion: numerator, denominator, share, points, rule."""
    yield [t("report.reform", lang)]
    yield [
        t("report.unit", lang),
        t("report.unit_name", lang),
        t("report.csv.item", lang),
        t("report.numerator", lang),
        t("report.denominator", lang),
        t("report.share", lang),
        t("report.points", lang),
        t("report.rule", lang),
    ]
    for u in s.units:
        r = u.reform
        if r is None:
            continue
        if not r.register:
            yield [u.unit, u.name, t("report.no_register", lang)]
            continue
        where = t("report.rule_of", lang, p=r.province, d=r.rules_from) if r.rules_from else ""
        for c in r.criteria:
            rule = f"{c.rule} ({where})" if c.rule else t("report.no_rule", lang)
            yield [
                u.unit,
                u.name,
                t(f"report.crit.{c.key}", lang),
                c.numerator,
                c.denominator,
                _num(c.pct),
                _num(c.points),
                rule,
            ]
        yield [u.unit, u.name, t("report.total_points", lang), "", "", "", _num(r.total_points), ""]


def mismatch_rows(s: Summary, lang: str) -> Iterator[Row]:
    for u in s.units:
        m = u.reform.mismatches if u.reform else None
        if m is None:
            continue
        yield [u.unit, t("report.mismatch_a", lang, n=m.post_without_shipment)]
        yield [t("report.line", lang), t("report.dossier", lang), t("shop.code", lang),
               t("report.received", lang), t("report.returned", lang)]  # fmt: skip
        for a in m.post_without_shipment_rows:
            yield [
                a.line,
                a.dossier_code,
                a.procedure_code,
                t(f"channel.{a.received_channel}", lang),
                t(f"channel.{a.returned_channel}", lang) if a.returned_channel else "",
            ]
        yield [u.unit, t("report.mismatch_b", lang, n=m.delivered_not_post)]
        yield [t("report.shipment", lang), t("board.kind", lang), t("report.dossier", lang),
               t("report.delivered_at", lang), t("report.in_register", lang)]  # fmt: skip
        for b in m.delivered_not_post_rows:
            said = b.register_received if b.kind == "submission" else b.register_returned
            yield [
                b.code,
                t(f"kind.{b.kind}", lang),
                b.dossier_ref,
                b.delivered_at.isoformat() if b.delivered_at else "",
                t(f"channel.{said}", lang) if said else t("report.not_in_register", lang),
            ]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def summary_csv(s: Summary, lang: str = "vi") -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerows(summary_rows(s, lang))
    for section in (hoso_rows, criteria_rows, mismatch_rows):
        w.writerow([])
        w.writerows([_cell(v) for v in row] for row in section(s, lang))
    return (BOM + out.getvalue()).encode("utf-8")


def summary_xlsx(s: Summary, lang: str = "vi") -> bytes:
    """The same rows as the CSV, on three sheets; numbers stay numbers."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value: Any, sheet: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters XML cannot hold
        if not text.startswith("="):
            return text
        out = WriteOnlyCell(sheet, value=text)
        out.data_type = "s"  # text someone typed, never a formula Excel would run
        return out

    book = Workbook(write_only=True)
    sheets = (
        ("report.sheet.summary", (summary_rows, hoso_rows)),
        ("report.sheet.criteria", (criteria_rows,)),
        ("report.sheet.mismatch", (mismatch_rows,)),
    )
    for title, sections in sheets:
        sheet = book.create_sheet(t(title, lang)[:31])
        for i, section in enumerate(sections):
            if i:
                sheet.append([])
            for row in section(s, lang):
                sheet.append([cell(v, sheet) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def file_name(s: Summary, ext: str) -> str:
    unit = f"-{s.unit}" if s.unit else ""
    return f"bao-cao{unit}-{local_day(s.start)}-{local_day(s.end, inclusive_end=True)}.{ext}"
