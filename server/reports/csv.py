"""The summary as a spreadsheet: UTF-8 with a BOM and CRLF, so Excel shows Vietnamese text."""

from __future__ import annotations

import csv
import io

from shared.i18n import t

from .service import Summary

BOM = "\ufeff"


def _num(value: float | int | None) -> str:
    return "" if value is None else str(value)


def summary_csv(s: Summary, lang: str = "vi") -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([t("report.csv.section", lang), t("report.csv.item", lang), t("report.csv.value", lang)])
    w.writerow([t("report.window", lang), t("report.from", lang), s.start.isoformat()])
    w.writerow([t("report.window", lang), t("report.to", lang), s.end.isoformat()])
    w.writerow([t("report.window", lang), t("report.unit", lang), s.unit or t("report.all_units", lang)])
    w.writerow([t("report.total", lang), "", s.total])
    for state, n in s.by_state.items():
        w.writerow([t("report.by_state", lang), t(f"state.{state}", lang), n])
    for kind, n in s.by_kind.items():
        w.writerow([t("report.by_kind", lang), t(f"kind.{kind}", lang), n])
    for field, n in s.by_field.items():
        w.writerow([t("report.by_field", lang), field or t("report.no_field", lang), n])
    w.writerow([t("report.on_time", lang), t("report.delivered", lang), s.delivered])
    w.writerow([t("report.on_time", lang), t("report.delivered_on_time", lang), s.delivered_on_time])
    w.writerow([t("report.on_time", lang), t("report.on_time_rate", lang), _num(s.on_time_rate)])
    w.writerow([t("report.on_time", lang), t("report.late_open", lang), s.late_open])
    w.writerow([t("report.times", lang), t("report.door_to_desk", lang), _num(s.door_to_desk.median_hours)])
    w.writerow([t("report.times", lang), t("report.desk_to_door", lang), _num(s.desk_to_door.median_hours)])
    for reason, n in s.failed_reasons.items():
        w.writerow([t("report.failed", lang), t(f"reason.{reason}", lang), n])
    w.writerow([t("report.ratings", lang), t("report.rating_count", lang), s.ratings.count])
    w.writerow([t("report.ratings", lang), t("report.rating_avg", lang), _num(s.ratings.average)])
    for score, n in s.ratings.by_score.items():
        w.writerow([t("report.ratings", lang), f"{score}★", n])
    w.writerow([])
    w.writerow(
        [
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
    )
    for u in s.units:
        w.writerow(
            [
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
        )
    return (BOM + out.getvalue()).encode("utf-8")
