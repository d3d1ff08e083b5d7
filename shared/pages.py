"""`data.pages` of a custody event (CUSTODY.md §4.1): the digitised pages of a dossier.

Pure checks shared by the server (before it signs a `digitised` event), and the offline
verifier (shared/bundle.py, which also checks the files a bundle carries against it).

    {"pdf": "<sha256 of the PDF>", "pdf_bytes": 812345, "ocr": "vie" | "skipped",
     "source": "photos" | "scanner_pdf", "original": "<sha256 of the scanner's PDF>",
     "pages": [{"sha256": "<sha256 of the page image>", "sharpness": 2855,
                "deskew_deg": -3.0}, ...]}

`original` only for `scanner_pdf`; `deskew_deg` only on a page that was turned level before
it went into the PDF (the page's own bytes, whose hash is listed, are kept unturned).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

# The limits on digitised pages, in one place (docs/API.md "Limits"): the server enforces them
# on every upload, the courier app before it queues a page (shared/pagecheck.py judges a page).
MiB = 1024 * 1024
MAX_PAGES = 40  # pages of one dossier (README "Limits")
MAX_PAGE_BYTES = 4 * MiB  # one page photo (a 1600×1200 JPEG is about 0.3 MiB)
MAX_PAGE_PIXELS = 12_000_000  # as a photo attachment (Settings.max_photo_pixels)
MIN_PAGE_SIDE = 100  # pixels: a smaller image cannot be judged, let alone read
MAX_SCANNER_PDF_BYTES = 15 * MiB  # below the request body limit (Settings.max_body_bytes)
MAX_UPLOAD_BYTES = 16 * MiB  # one request of page photos from the courier app (the body cap)
MIN_MEAN_LUMINANCE = 70  # mean grey level (0–255) below which a page is too dark
SHARPNESS_SIDE = 800  # the longer side (pixels) the sharpness is measured at
MIN_SHARPNESS = 120  # variance of the Laplacian below which a page is blurred
DESKEW_MIN_DEG = 1.0  # pages tilted by this much or more are turned level for the PDF
OCR_STATES = ("vie", "skipped")
SOURCES = ("photos", "scanner_pdf")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _hex(value: Any) -> bool:
    return isinstance(value, str) and bool(_HEX64.match(value))


def pages_problem(pages: Any) -> str | None:
    """A sentence naming what is wrong with a `data.pages` value, or None."""
    if not isinstance(pages, dict):
        return "data.pages must be an object with pdf, ocr, source and pages"
    unknown = set(pages) - {"pdf", "pdf_bytes", "ocr", "source", "original", "pages"}
    if unknown:
        return f"data.pages has unknown members: {', '.join(sorted(unknown))}"
    if not _hex(pages.get("pdf")):
        return "data.pages.pdf must be the PDF's SHA-256 in lowercase hex"
    if type(pages.get("pdf_bytes")) is not int or pages["pdf_bytes"] <= 0:
        return "data.pages.pdf_bytes must be the PDF's size in bytes"
    if pages.get("ocr") not in OCR_STATES:
        return f"data.pages.ocr must be one of {', '.join(OCR_STATES)}"
    source = pages.get("source")
    if source not in SOURCES:
        return f"data.pages.source must be one of {', '.join(SOURCES)}"
    if (source == "scanner_pdf") != ("original" in pages) or (
        "original" in pages and not _hex(pages["original"])
    ):
        return "data.pages.original (the scanner's PDF, SHA-256 hex) is given exactly for source scanner_pdf"
    items = pages.get("pages")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_PAGES:
        return f"data.pages.pages must list 1 to {MAX_PAGES} pages"
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict) or set(item) - {"sha256", "sharpness", "deskew_deg"}:
            return f"data.pages.pages[{n}] must be an object with sha256, sharpness and maybe deskew_deg"
        if not _hex(item.get("sha256")):
            return f"data.pages.pages[{n}].sha256 must be a SHA-256 in lowercase hex"
        if type(item.get("sharpness")) is not int:
            return f"data.pages.pages[{n}].sharpness must be an integer"
    return None


def files_named(pages: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, sha256) of every file a `data.pages` commits to: the PDF, the original, each page."""
    named = [("PDF", pages["pdf"])]
    if "original" in pages:
        named.append(("scanner PDF", pages["original"]))
    named += [(f"page {n}", p["sha256"]) for n, p in enumerate(pages["pages"], start=1)]
    return named


def encode_file(body: bytes) -> str:
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def file_problem(sha256: str, encoded: Any) -> str | None:
    """Does a bundle's `files[sha256]` (base64url) hold bytes with that hash? None when it does."""
    if not isinstance(encoded, str):
        return "is not base64url text"
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return "is not valid base64url"
    actual = hashlib.sha256(body).hexdigest()
    if actual != sha256:
        return f"has SHA-256 {actual[:12]}…, not {sha256[:12]}…: the file was altered"
    return None
