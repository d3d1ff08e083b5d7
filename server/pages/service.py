"""Digitising a dossier (issue 18): pages checked one by one, bound into one PDF on the server
(lossless from the images with img2pdf; a Vietnamese text layer by OCR when tesseract is
installed), stored as attachments and committed to by a server-signed `digitised` event whose
`data.pages` holds the PDF's and every page's SHA-256 (CUSTODY.md §4.1)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from litestar.datastructures import UploadFile

from shared import codes
from shared import pagecheck as checks
from shared.events import CustodyEvent
from shared.lifecycle import EventType, IllegalTransition
from shared.pages import (
    DESKEW_MIN_DEG,
    MAX_PAGE_BYTES,
    MAX_PAGE_PIXELS,
    MAX_PAGES,
    MAX_SCANNER_PDF_BYTES,
    MiB,
    pages_problem,
)

from ..auth.service import CurrentUser
from ..custody import attachments
from ..custody.service import append_server_event, lock_shipments
from ..db.engine import Database
from ..errors import BadRequest, Conflict, PermissionDeniedException, TooLarge, Unprocessable
from ..keys import ServerKeys
from ..shipments import repository
from ..shipments.service import parse_code

OCR_TIMEOUT_S = 120
SCAN_DPI = 100  # page images rendered from a scanner's PDF, for the checks and thumbnails
OCR_MISSING = "OCR bỏ qua: máy chủ chưa cài tesseract-ocr-vie / OCR skipped: tesseract (vie) is not installed"
OCR_DONE = "Đã thêm lớp chữ tiếng Việt (OCR) / Vietnamese text layer added (OCR)"
# one dossier is bound at a time per server process: OCR takes both cores of a small server
_LIMITER = anyio.CapacityLimiter(1)


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    body: bytes


PART = "page"  # the multipart field of each page image, in order


async def uploads_of(form: Any) -> list[Upload]:
    """The page parts of a multipart form, in order; a file input left empty (no name, no
    bytes: what a browser sends when nothing was chosen) is no page."""
    parts = [f for f in form.getall(PART, []) if isinstance(f, UploadFile)]
    out = [Upload(f.filename or "", await f.read()) for f in parts]
    return [u for u in out if u.body or u.filename]


@dataclass(slots=True)
class Bound:
    """What assembling produced, before anything is stored."""

    pdf: bytes
    ocr: str  # "vie" or "skipped"
    ocr_note: str
    pages: list[tuple[bytes, str, checks.PageReport, float | None]]  # body, type, report, deskew
    original: bytes | None = None


@dataclass(slots=True)
class Digitised:
    code: str
    head: str
    pages: dict[str, Any]
    ocr_note: str
    reports: list[checks.PageReport] = field(default_factory=list)
    event: CustodyEvent | None = None  # the signed `digitised` event
    repeated: bool = False  # the same pages were sent again: the earlier event is the answer


class PagesRefused(Unprocessable):
    """Pages that must be taken again: `problems` lists each page's reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "Chụp lại các trang sau / Retake these pages: " + " ".join(problems),
            extra={"problems": problems},
        )
        self.problems = problems


def ocr_available() -> bool:
    if not (shutil.which("ocrmypdf") and shutil.which("tesseract")):
        return False
    try:
        langs = subprocess.run(
            ["tesseract", "--list-langs"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "vie" in langs


def _content_type(body: bytes) -> str:
    if body.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if body.startswith(b"%PDF-"):
        return "application/pdf"
    return ""


def check_uploads(uploads: list[Upload]) -> list[tuple[Upload, str]]:
    """Count, size and type of what was sent, before any pixel is read: a 4xx naming the limit."""
    if not uploads:
        raise BadRequest("Chưa có trang nào / No page was sent: add the page photos or the scanner's PDF.")
    typed = [(u, _content_type(u.body)) for u in uploads]
    for n, (u, ctype) in enumerate(typed, start=1):
        name = u.filename or f"#{n}"
        if not u.body:
            raise BadRequest(f"Tệp {name} rỗng / File {name} is empty: choose it again.")
        if not ctype:
            raise BadRequest(
                f"Tệp {name} không phải JPEG, PNG hay PDF / File {name} is not a JPEG, PNG or PDF: "
                "send page photos or the scanner's PDF."
            )
    pdfs = [u for u, c in typed if c == "application/pdf"]
    if pdfs and len(typed) > 1:
        raise BadRequest(
            "Gửi một tệp PDF của máy quét, hoặc các ảnh trang, không lẫn cả hai / "
            "Send either one scanner PDF or page images, not both."
        )
    if pdfs:
        if len(pdfs[0].body) > MAX_SCANNER_PDF_BYTES:
            raise TooLarge(
                f"Tệp PDF tối đa {MAX_SCANNER_PDF_BYTES // MiB} MiB / A scanner PDF may have at most "
                f"{MAX_SCANNER_PDF_BYTES // MiB} MiB; this one has {len(pdfs[0].body) // MiB} MiB. "
                "Scan at 200 dpi in grey, or split the dossier."
            )
        return typed
    if len(typed) > MAX_PAGES:
        raise TooLarge(
            f"Một hồ sơ tối đa {MAX_PAGES} trang / A dossier may have at most {MAX_PAGES} pages; "
            f"{len(typed)} were sent."
        )
    for n, (u, _) in enumerate(typed, start=1):
        if len(u.body) > MAX_PAGE_BYTES:
            raise TooLarge(
                f"Trang {n} quá lớn / Page {n} has {len(u.body) // 1024} KiB; a page may have at most "
                f"{MAX_PAGE_BYTES // MiB} MiB. Take it at a lower resolution (1600×1200 is enough)."
            )
    return typed


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # tesseract: one thread per page, pages in parallel
    return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, env=env)


def ocr_pdf(pdf: bytes, *, jobs: int | None = None) -> tuple[bytes, str, str]:
    """(pdf, "vie" | "skipped", note): the PDF with a Vietnamese text layer, or as it was."""
    if not ocr_available():
        return (
            pdf,
            "skipped",
            "OCR bỏ qua: máy chủ chưa cài tesseract-ocr-vie / OCR skipped: tesseract (vie) is not installed",
        )
    with tempfile.TemporaryDirectory(prefix="hoso-ocr-") as tmp:
        src, out = Path(tmp, "in.pdf"), Path(tmp, "out.pdf")
        src.write_bytes(pdf)
        cmd = ["ocrmypdf", "-l", "vie", "--skip-text", "--output-type", "pdf", "--optimize", "0"]
        cmd += ["--jobs", str(jobs or os.cpu_count() or 1), "--quiet", str(src), str(out)]
        try:
            done = _run(cmd, OCR_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return (
                pdf,
                "skipped",
                f"OCR bỏ qua: quá {OCR_TIMEOUT_S} s / OCR skipped: it took over {OCR_TIMEOUT_S} s",
            )
        if done.returncode != 0 or not out.exists():
            why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [
                f"exit {done.returncode}"
            ]
            return pdf, "skipped", f"OCR bỏ qua / OCR skipped: ocrmypdf failed ({why[0][:200]})"
        return out.read_bytes(), "vie", OCR_DONE


def ocr_images(parts: list[bytes], pdf: bytes, *, jobs: int | None = None) -> tuple[bytes, str, str]:
    """(pdf, "vie" | "skipped", note): the images' PDF with tesseract's Vietnamese text layer.

    Tesseract writes a text-only PDF of the pages (`textonly_pdf=1`), in `jobs` processes at
    once, and pikepdf lays each text page over the image page of `pdf`: the images stay the
    bytes img2pdf embedded. (ocrmypdf does the same and more, but rasterises every page again
    first: 17 s for 20 photos here against about 5 s; it is used for scanners' PDFs.)"""
    if not ocr_available():
        return pdf, "skipped", OCR_MISSING
    import pikepdf

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(parts)))
    with tempfile.TemporaryDirectory(prefix="hoso-ocr-") as tmp:
        names = []
        for n, body in enumerate(parts):
            path = Path(tmp, f"p{n:03d}")
            path.write_bytes(body)
            names.append(str(path))
        chunks = [names[i::jobs] for i in range(jobs)]  # page n goes to chunk n % jobs
        procs = []
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        for k, chunk in enumerate(chunks):
            listing = Path(tmp, f"list{k}.txt")
            listing.write_text("\n".join(chunk) + "\n")
            cmd = ["tesseract", str(listing), str(Path(tmp, f"text{k}")), "-l", "vie"]
            # no second pass for white-on-black text (a form's shaded header may go unread): ~20 % faster
            cmd += ["-c", "textonly_pdf=1", "-c", "tessedit_do_invert=0", "pdf"]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env))
        failed = ""
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=OCR_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                failed = failed or f"quá {OCR_TIMEOUT_S} s / it took over {OCR_TIMEOUT_S} s"
                continue
            if proc.returncode != 0:
                failed = failed or (err.decode(errors="replace").strip().splitlines() or ["?"])[-1][:200]
        if failed:
            return pdf, "skipped", f"OCR bỏ qua / OCR skipped: tesseract failed ({failed})"
        with pikepdf.open(io.BytesIO(pdf)) as base:
            texts = [pikepdf.open(Path(tmp, f"text{k}.pdf")) for k in range(jobs)]
            try:
                for n, page in enumerate(base.pages):
                    # rect None: the whole page (pikepdf's stub omits the default it has)
                    page.add_overlay(texts[n % jobs].pages[n // jobs], None)
                out = io.BytesIO()
                base.save(out)
            finally:
                for text in texts:
                    text.close()
        return out.getvalue(), "vie", OCR_DONE


def _rgb_png(body: bytes) -> bytes:
    """img2pdf refuses PNGs with transparency: flatten onto white (still lossless)."""
    from PIL import Image

    with Image.open(io.BytesIO(body)) as img:
        if img.mode not in ("RGBA", "LA", "P"):
            return body
        flat = Image.new("RGB", img.size, "white")
        flat.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        out = io.BytesIO()
        flat.save(out, "PNG")
        return out.getvalue()


def _checked(number: int, body: bytes) -> checks.PageReport:
    try:
        return checks.check_page(number, body, MAX_PAGE_PIXELS)
    except checks.PageTooLarge as exc:
        raise TooLarge(f"Trang {number} / Page {number}: {exc}. Take it at 1600×1200 or so.") from None
    except checks.PageUnreadable as exc:
        raise BadRequest(f"Trang {number} / Page {number}: {exc}. Choose or take it again.") from None


def bind_images(pages: list[tuple[bytes, str]], *, ocr: bool = True) -> Bound:
    """Check every page, then bind them into one PDF: CPU work, run it off the event loop."""
    import img2pdf

    reports = [_checked(n, body) for n, (body, _) in enumerate(pages, start=1)]
    problems = [p for r in reports for p in r.problems]
    if problems:
        raise PagesRefused(problems)
    bound: list[tuple[bytes, str, checks.PageReport, float | None]] = []
    parts: list[bytes] = []
    for (body, ctype), report in zip(pages, reports, strict=True):
        turned = checks.straightened(body, report.skew_deg)
        level = turned is not None and abs(report.skew_deg) >= DESKEW_MIN_DEG
        bound.append((body, ctype, report, report.skew_deg if level else None))
        parts.append(turned or (_rgb_png(body) if ctype == "image/png" else body))
    try:
        pdf = img2pdf.convert(parts, nodate=True)
    except (img2pdf.ImageOpenError, img2pdf.AlphaChannelError, ValueError, OSError) as exc:
        raise Unprocessable(
            f"Không ghép được các trang thành PDF / The pages cannot be bound into a PDF ({exc}): "
            "save them again as ordinary JPEG photos."
        ) from None
    if ocr:
        pdf, state, note = ocr_images(parts, pdf)
    else:
        state, note = "skipped", "OCR bỏ qua theo yêu cầu / OCR skipped on request"
    return Bound(pdf, state, note, bound)


def bind_scanner_pdf(pdf: bytes, *, ocr: bool = True) -> Bound:
    """A document scanner's PDF: its pages rendered (SCAN_DPI, grey JPEG) for the checks and the
    thumbnails; the PDF itself gets the text layer (ocrmypdf keeps its images as they are)."""
    if not (shutil.which("pdfinfo") and shutil.which("pdftoppm")):
        raise Unprocessable(
            "Máy chủ chưa cài poppler-utils nên không đọc được PDF / The server cannot read PDFs "
            "(poppler-utils is not installed): send the pages as images."
        )
    with tempfile.TemporaryDirectory(prefix="hoso-scan-") as tmp:
        src = Path(tmp, "scan.pdf")
        src.write_bytes(pdf)
        info = _run(["pdfinfo", str(src)], 30)
        count = next(
            (
                int(line.split()[-1])
                for line in info.stdout.decode(errors="replace").splitlines()
                if line.startswith("Pages:") and line.split()[-1].isdigit()
            ),
            0,
        )
        if info.returncode != 0 or count == 0:
            raise BadRequest("Tệp PDF bị hỏng / The PDF is damaged or has no pages: scan the dossier again.")
        if count > MAX_PAGES:
            raise TooLarge(
                f"Một hồ sơ tối đa {MAX_PAGES} trang / A dossier may have at most {MAX_PAGES} pages; "
                f"this PDF has {count}."
            )
        # a page rendered at SCAN_DPI stays small even for A3; -scale-to caps a huge page
        done = _run(
            ["pdftoppm", "-r", str(SCAN_DPI), "-scale-to", "2000", "-gray", "-jpeg", str(src), f"{tmp}/p"],
            120,
        )
        if done.returncode != 0:
            raise BadRequest(
                "Không đọc được các trang của PDF / The PDF's pages cannot be rendered: scan again."
            )
        renders = [p.read_bytes() for p in sorted(Path(tmp).glob("p-*.jpg"))]
    reports = [_checked(n, body) for n, body in enumerate(renders, start=1)]
    problems = [p for r in reports for p in r.problems]
    if problems:
        raise PagesRefused(problems)
    out, state, note = ocr_pdf(pdf) if ocr else (pdf, "skipped", "OCR skipped on request")
    return Bound(
        out, state, note, [(b, "image/jpeg", r, None) for b, r in zip(renders, reports, strict=True)], pdf
    )


def pages_data(bound: Bound) -> dict[str, Any]:
    data: dict[str, Any] = {
        "pdf": hashlib.sha256(bound.pdf).hexdigest(),
        "pdf_bytes": len(bound.pdf),
        "ocr": bound.ocr,
        "source": "scanner_pdf" if bound.original is not None else "photos",
        "pages": [],
    }
    if bound.original is not None:
        data["original"] = hashlib.sha256(bound.original).hexdigest()
    for body, _, report, deskew in bound.pages:
        item: dict[str, Any] = {"sha256": hashlib.sha256(body).hexdigest(), "sharpness": report.sharpness}
        if deskew is not None:
            item["deskew_deg"] = deskew
        data["pages"].append(item)
    problem = pages_problem(data)
    assert problem is None, problem
    return data


def _courier_refusal(user: CurrentUser, ship: Any) -> None:
    """May this courier send the pages of this dossier? Only the courier who picked it up from
    the citizen and still holds it: the pages are captured at the pickup (CUSTODY.md §4.1)."""
    grouped = codes.group(ship.code)
    if ship.kind == "result":
        raise Conflict(
            f"Bưu gửi {grouped} là kết quả, không phải hồ sơ: không chụp trang / Shipment {grouped} "
            "is a result, not a dossier: only a dossier's pages are captured at pickup."
        )
    if ship.state == "registered":
        raise Conflict(
            f"Hồ sơ {grouped} chưa được nhận / Dossier {grouped} has not been picked up yet: "
            "record the pickup (and let it sync), then send its pages."
        )
    if ship.custodian_user_id != user.id or ship.state != "in_custody":
        raise _handed_on(ship.code)


def _handed_on(code: str) -> PermissionDeniedException:
    grouped = codes.group(code)
    return PermissionDeniedException(
        f"Hồ sơ {grouped} đã được giao tiếp, quầy sẽ quét trang / Dossier {grouped} is no longer "
        "in your hands (it was handed on): the counter scans its pages instead."
    )


async def _already(db: Database, ship_id: int, data: dict[str, Any]) -> Any:
    """The `digitised` event that already holds exactly these pages (a retry whose answer was
    lost), or None."""
    wanted = [p["sha256"] for p in data["pages"]]
    async with db.read() as conn:
        done = await repository.events_of(conn, ship_id, [EventType.DIGITISED.value])
    for stored in done:
        pages = stored.event.data.get("pages") if isinstance(stored.event.data, dict) else None
        if isinstance(pages, dict) and [p.get("sha256") for p in pages.get("pages", [])] == wanted:
            return stored.event
    return None


async def digitise(
    db: Database,
    keys: ServerKeys,
    root: Path,
    user: CurrentUser,
    code_text: str,
    uploads: list[Upload],
    *,
    max_unreferenced: int = attachments.MAX_UNREFERENCED_BYTES,
) -> Digitised:
    """Pages from the counter (a clerk or dispatcher who sees the dossier) or from the courier
    who picked it up and holds it (`_courier_refusal`): checked, bound, stored, signed."""
    code = parse_code(code_text)
    async with db.read() as conn:
        try:
            ship = await repository.visible(conn, user, code)  # 404 unknown, 403/404 another unit's
        except PermissionDeniedException:
            if user.role == "courier" and await repository.signed_by(conn, code, user.actor):
                raise _handed_on(code) from None
            raise
    if user.role == "courier":
        _courier_refusal(user, ship)
    if ship.state not in ("registered", "in_custody"):
        raise Conflict(
            f"Bưu gửi {codes.group(code)} đã {ship.state} / Shipment {codes.group(code)} is "
            f"{ship.state}: its pages can be added only while it is open."
        )
    typed = check_uploads(uploads)
    if user.role == "courier" and typed[0][1] == "application/pdf":
        raise BadRequest(
            "Ứng dụng bưu tá gửi ảnh trang, không gửi PDF / The courier app sends page photos, not a PDF: "
            "a scanner's PDF is uploaded at the counter."
        )
    if typed[0][1] == "application/pdf":
        bound = await anyio.to_thread.run_sync(bind_scanner_pdf, typed[0][0].body, limiter=_LIMITER)
    else:
        images = [(u.body, ctype) for u, ctype in typed]
        bound = await anyio.to_thread.run_sync(bind_images, images, limiter=_LIMITER)
    data = pages_data(bound)
    reports = [r for _, _, r, _ in bound.pages]
    if user.role == "courier" and (earlier := await _already(db, ship.id, data)) is not None:
        return Digitised(code, earlier.hash, earlier.data["pages"], bound.ocr_note, reports, earlier, True)
    files = [(b, t) for b, t, _, _ in bound.pages] + [(bound.pdf, "application/pdf")]
    if bound.original is not None:
        files.append((bound.original, "application/pdf"))
    for body, ctype in files:
        sha = hashlib.sha256(body).hexdigest()
        await attachments.store(db, root, sha, ctype, body, user.id, max_unreferenced=max_unreferenced)
    from shared.timeutil import utcnow

    async with db.write() as conn:
        locked = (await lock_shipments(conn, [code])).get(code)
        assert locked is not None
        if user.role == "courier" and locked["custodian_user_id"] != user.id:
            raise _handed_on(code)
        try:
            event = await append_server_event(
                conn,
                keys.event,
                locked,
                event_type=EventType.DIGITISED,
                role=user.role,
                actor=user.actor,
                data={"pages": data},
                now=utcnow(),
                merkle_log=db.merkle_log,
            )
        except IllegalTransition as exc:
            raise Conflict(f"Không thêm được trang / The pages cannot be added: {exc}.") from None
    db.changed("digitised", [code])
    return Digitised(code, event.hash, data, bound.ocr_note, reports, event)
