"""Reading the one-stop shop's files: the procedure catalogue and the dossier register, as CSV
(UTF-8 with or without a BOM, comma or semicolon) or XLSX (the first sheet), with Vietnamese
headers (docs/REGISTER.md). Every cell is checked; the first bad one stops the file with its
line and column, so a file is taken whole or not at all."""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..errors import Unprocessable

XLSX_MAGIC = b"PK\x03\x04"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ROWS = 200_000
MAX_CELL = 2_000
CHANNELS = ("counter", "online", "post")


class BadFile(Unprocessable):
    """A file refused whole: the sentence says where and why."""


def bad_cell(line: int, column: str, why: str) -> BadFile:
    return BadFile(
        f"Dòng {line}, cột «{column}»: {why} Không dữ liệu nào của tệp được lưu. "
        f"(Line {line}, column “{column}”: nothing of this file was kept; fix the row and import again.)",
        extra={"line": line, "column": column},
    )


def fold(text: str) -> str:
    """A header or a word as compared: no accents, đ as d, lower case, single spaces."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    header: str  # as documented (Vietnamese)
    aliases: tuple[str, ...]
    required: bool = True


CATALOGUE = (
    Column("code", "Mã thủ tục", ("ma thu tuc", "ma tthc", "code", "procedure code")),
    Column("name", "Tên thủ tục", ("ten thu tuc", "ten tthc", "name", "procedure")),
    Column("field", "Lĩnh vực", ("linh vuc", "field"), required=False),
    Column("by_post", "Qua bưu chính", ("qua buu chinh", "buu chinh", "bcci", "by post"), required=False),
    Column("components", "Thành phần hồ sơ", ("thanh phan ho so", "components"), required=False),
    Column(
        "fee",
        "Phí, lệ phí (đồng)",
        ("phi le phi dong", "phi le phi vnd", "phi le phi", "phi", "le phi", "fee", "fee vnd"),
        required=False,
    ),
)
REGISTER = (
    Column("dossier_code", "Mã hồ sơ", ("ma ho so", "dossier code")),
    Column("procedure_code", "Mã thủ tục", ("ma thu tuc", "ma tthc", "procedure code")),
    Column("field", "Lĩnh vực", ("linh vuc", "field"), required=False),
    Column("received_on", "Ngày tiếp nhận", ("ngay tiep nhan", "date received", "received on")),
    Column(
        "received_channel",
        "Hình thức tiếp nhận",
        ("hinh thuc tiep nhan", "kenh tiep nhan", "channel received"),
    ),
    Column(
        "returned_on",
        "Ngày trả kết quả",
        ("ngay tra ket qua", "date returned", "returned on", "result returned date"),
        required=False,
    ),
    Column(
        "returned_channel",
        "Hình thức trả kết quả",
        ("hinh thuc tra ket qua", "kenh tra ket qua", "channel returned", "result returned channel"),
        required=False,
    ),
)

_CHANNEL_WORDS = {
    "counter": ("truc tiep", "tai quay", "quay", "tai bo phan mot cua", "mot cua", "counter", "in person"),
    "online": ("truc tuyen", "online", "dich vu cong", "dich vu cong truc tuyen", "dvc", "dvctt"),
    "post": ("buu chinh", "qua buu chinh", "bcci", "buu chinh cong ich", "qua bcci", "post", "by post"),
}
CHANNEL_OF = {word: key for key, words in _CHANNEL_WORDS.items() for word in words}
YES = {"co", "x", "yes", "true", "1", "duoc", "y"}
NO = {"khong", "no", "false", "0", "n"}


# ---- rows out of a CSV or an XLSX file ---------------------------------------------------------


def _csv_rows(body: bytes) -> Iterator[tuple[int, list[Any]]]:
    try:
        text = codecs.decode(body, "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise BadFile(
            f"Tệp không phải UTF-8 (dòng {line}): lưu lại dưới dạng «CSV UTF-8». "
            f"(The file is not UTF-8 at line {line}: save it as “CSV UTF-8”.)",
            extra={"line": line},
        ) from None
    if "\x00" in text:
        raise BadFile("Tệp có ký tự NUL: không phải CSV. (The file holds NUL characters: not a CSV.)")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise BadFile(
            f"Dòng {start}: CSV không đọc được ({exc}). (Line {start}: not readable as CSV.)",
            extra={"line": start},
        ) from None


def _xlsx_rows(body: bytes) -> Iterator[tuple[int, list[Any]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise BadFile(
            f"Tệp XLSX không mở được ({type(exc).__name__}). (The XLSX file cannot be opened.)"
        ) from None
    try:
        sheet = book.worksheets[0]
        for n, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield n, list(row)
    finally:
        book.close()


def rows_of(body: bytes) -> Iterator[tuple[int, list[Any]]]:
    """(line, cells) of a CSV or XLSX file, told apart by their first bytes."""
    if not body.strip():
        raise BadFile("Tệp trống. (The file is empty: give a CSV or XLSX file with a header row.)")
    return _xlsx_rows(body) if body.startswith(XLSX_MAGIC) else _csv_rows(body)


def _blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def records(body: bytes, columns: tuple[Column, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, {key: raw cell}) for each non-blank row under the header row."""
    rows = rows_of(body)
    header: dict[str, int] = {}
    for line, cells in rows:
        if _blank(cells):
            continue
        names = [fold(str(c)) if c is not None else "" for c in cells]
        for col in columns:
            for i, name in enumerate(names):
                if name in col.aliases and i not in header.values():
                    header[col.key] = i
                    break
        missing = [c.header for c in columns if c.required and c.key not in header]
        if missing:
            wanted = ", ".join(f"«{c.header}»" for c in columns)
            raise BadFile(
                f"Dòng {line} (tiêu đề) thiếu cột {', '.join(f'«{m}»' for m in missing)}; "
                f"các cột: {wanted}. (The header row lacks the columns {', '.join(missing)}.)",
                extra={"line": line, "column": missing[0]},
            )
        break
    else:
        raise BadFile("Tệp không có dòng tiêu đề. (The file has no header row.)")
    count = 0
    for line, cells in rows:
        if _blank(cells):
            continue
        count += 1
        if count > MAX_ROWS:
            raise BadFile(f"Quá {MAX_ROWS:,} dòng. (More than {MAX_ROWS:,} rows: split the file.)")
        yield line, {k: cells[i] if i < len(cells) else None for k, i in header.items()}


# ---- cells -------------------------------------------------------------------------------------


def text_cell(value: Any, line: int, column: str, *, required: bool, limit: int) -> str:
    if value is None:
        out = ""
    elif isinstance(value, float) and value.is_integer():
        out = str(int(value))
    else:
        out = str(value).strip()
    if "\x00" in out:
        raise bad_cell(line, column, "có ký tự NUL (NUL character).")
    if required and not out:
        raise bad_cell(line, column, "ô trống (the cell is empty).")
    if len(out) > limit:
        raise bad_cell(line, column, f"dài quá {limit} ký tự (longer than {limit} characters).")
    return out


def date_cell(value: Any, line: int, column: str, *, required: bool) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise bad_cell(line, column, "ô trống, cần một ngày (empty; a date is needed).")
        return None
    day = text.split()[0].split("T")[0]
    try:
        if "/" in day or "." in day:
            d, m, y = re.split(r"[/.]", day)
            return date(int(y), int(m), int(d))
        return date.fromisoformat(day)
    except ValueError:
        raise bad_cell(
            line,
            column,
            f"{text!r} không phải ngày; ghi dd/mm/yyyy hoặc yyyy-mm-dd "
            "(not a date; write dd/mm/yyyy or yyyy-mm-dd).",
        ) from None


def channel_cell(value: Any, line: int, column: str, *, required: bool) -> str | None:
    text = "" if value is None else str(value)
    if not text.strip():
        if required:
            raise bad_cell(line, column, "ô trống (empty): ghi Trực tiếp, Trực tuyến hoặc Bưu chính.")
        return None
    key = CHANNEL_OF.get(fold(text))
    if key is None:
        raise bad_cell(
            line,
            column,
            f"{text.strip()!r} không phải hình thức nào: ghi Trực tiếp, Trực tuyến hoặc Bưu chính "
            "(not a channel: write counter, online or post).",
        )
    return key


def fee_cell(value: Any, line: int, column: str) -> int:
    """Whole đồng: 50000, 50.000, 50,000 or "50.000 đ"; never a fraction."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise bad_cell(line, column, "không phải số tiền (not an amount).")
    if isinstance(value, int):
        out = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise bad_cell(line, column, f"{value} không phải số đồng nguyên (not whole đồng).")
        out = int(value)
    else:
        text = re.sub(r"(?i)\s|đồng|đ|vnd", "", str(value))
        if not text:
            return 0
        # thousands grouped by "." or "," in threes (50.000, 50,000); "12,5" is a fraction
        if not re.fullmatch(r"\d+|\d{1,3}(?:\.\d{3})+|\d{1,3}(?:,\d{3})+", text):
            raise bad_cell(
                line, column, f"{str(value).strip()!r} không phải số đồng, ví dụ 50000 (not whole đồng)."
            )
        out = int(text.replace(".", "").replace(",", ""))
    if not 0 <= out <= 10**12:
        raise bad_cell(line, column, f"{out} nằm ngoài 0 – 10¹² đồng (out of range).")
    return out


def bool_cell(value: Any, line: int, column: str) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    word = fold(str(value))
    if word in YES:
        return True
    if word in NO:
        return False
    raise bad_cell(line, column, f"{str(value).strip()!r}: ghi Có hoặc Không (write yes or no).")


def components_cell(value: Any, line: int, column: str) -> list[str]:
    text = text_cell(value, line, column, required=False, limit=20_000)
    parts = [p.strip(" -•\t") for p in re.split(r"[\n;|]", text)]
    out = [p for p in parts if p]
    if len(out) > 50:
        raise bad_cell(line, column, "quá 50 thành phần (more than 50 components).")
    for p in out:
        if len(p) > 200:
            raise bad_cell(
                line, column, "một thành phần dài quá 200 ký tự (a component over 200 characters)."
            )
    return out
