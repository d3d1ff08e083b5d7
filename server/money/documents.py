"""The monthly statement of fees collected on behalf (bảng kê thu hộ) as PDF and XLSX.

The PDF is built like every other paper of the project (labels/documents.py: reportlab,
Be Vietnam Pro, A4, in a worker thread); the XLSX with openpyxl. Amounts stay int VND.
"""

from __future__ import annotations

import io

from shared import codes
from shared.i18n import vnd

from ..console.service import VN
from ..labels.documents import Document
from .service import Statement

TITLE = "BẢNG KÊ THU HỘ PHÍ, LỆ PHÍ"
HEADERS = (
    "STT",
    "Mã bưu gửi",
    "Mã hồ sơ",
    "Thủ tục",
    "Bưu tá thu",
    "Ngày thu",
    "Số tiền (đồng)",
    "Ngày nộp bưu cục",
    "Phiếu nộp số",
)


def _d(day: object) -> str:
    return day.strftime("%d/%m/%Y") if day is not None else ""  # type: ignore[attr-defined]


def statement_pdf(s: Statement) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth

    doc = Document(TITLE)
    doc.line(f"Cơ quan: {s.agency_name} ({s.agency_code})", bold=True)
    doc.line(f"Tháng {s.month_vn}")
    doc.line(f"Lập lúc {s.made_at.astimezone(VN).strftime('%H:%M ngày %d/%m/%Y')}", 9)
    doc.y -= 4
    cols = [
        (8, "STT"),
        (30, "Mã bưu gửi"),
        (52, "Thủ tục"),
        (32, "Bưu tá thu"),
        (18, "Ngày thu"),
        (30, "Số tiền"),
        (0, "Đã nộp"),
    ]
    x0 = 20 * mm

    def row(cells: list[str], bold: bool = False) -> None:
        doc.need(14)
        font = "BeVietnamPro-Bold" if bold else "BeVietnamPro"
        doc.c.setFont(font, 8.5)
        x = x0
        for (width, _), text in zip(cols, cells, strict=True):
            w = (width or 22) * mm - 2
            while text and stringWidth(text, font, 8.5) > w:
                text = text[:-2] + "…"
            if _ == "Số tiền":
                doc.c.drawRightString(x + w, doc.y, text)
            else:
                doc.c.drawString(x, doc.y, text)
            x += (width or 22) * mm
        doc.y -= 13

    row([name for _, name in cols], bold=True)
    for line in s.lines:
        row(
            [
                str(line.n),
                codes.group(line.code),
                line.procedure or "—",
                line.courier,
                line.collected_on.strftime("%d/%m"),
                vnd(line.fee_vnd),
                _d(line.remitted_on) if line.remitted_on else "chưa nộp",
            ]
        )
    doc.y -= 6
    doc.line(f"Tổng số bưu gửi: {len(s.lines)}", bold=True)
    doc.line(f"Tổng tiền thu hộ: {vnd(s.total_vnd)}", bold=True)
    doc.line(f"Đã nộp bưu cục: {vnd(s.remitted_vnd)}; còn bưu tá giữ: {vnd(s.outstanding_vnd)}")
    doc.need(30 * mm)
    doc.y -= 10
    doc.c.setFont("BeVietnamPro-Bold", 11)
    doc.c.drawCentredString(doc.w * 0.28, doc.y, "ĐẠI DIỆN BƯU CỤC")
    doc.c.drawCentredString(doc.w * 0.72, doc.y, "ĐẠI DIỆN CƠ QUAN")
    doc.c.setFont("BeVietnamPro", 9)
    doc.c.drawCentredString(doc.w * 0.28, doc.y - 12, "(ký, ghi rõ họ tên)")
    doc.c.drawCentredString(doc.w * 0.72, doc.y - 12, "(ký, ghi rõ họ tên)")
    return doc.done()


def statement_xlsx(s: Statement) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = f"Thu hộ {s.month}"
    ws.append([TITLE])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(["Cơ quan", f"{s.agency_name} ({s.agency_code})"])
    ws.append(["Tháng", s.month_vn])
    ws.append([])
    ws.append(list(HEADERS))
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
    for line in s.lines:
        ws.append(
            [
                line.n,
                line.code,
                line.dossier_ref,
                line.procedure,
                line.courier,
                line.collected_on,
                line.fee_vnd,
                line.remitted_on,
                line.remittance_id,
            ]
        )
        ws.cell(ws.max_row, 6).number_format = "DD/MM/YYYY"
        ws.cell(ws.max_row, 7).number_format = "#,##0"
        ws.cell(ws.max_row, 8).number_format = "DD/MM/YYYY"
    ws.append([])
    for label, amount in (
        ("Tổng tiền thu hộ", s.total_vnd),
        ("Đã nộp bưu cục", s.remitted_vnd),
        ("Còn bưu tá giữ", s.outstanding_vnd),
    ):
        ws.append([None, label, None, None, None, None, amount])
        ws.cell(ws.max_row, 2).font = Font(bold=True)
        ws.cell(ws.max_row, 7).number_format = "#,##0"
        ws.cell(ws.max_row, 7).font = Font(bold=True)
    for col, width in zip("ABCDEFGHI", (6, 16, 24, 36, 22, 12, 16, 16, 12), strict=True):
        ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
