"""Digitised dossier pages (issue 18): page checks, the PDF with its Vietnamese text layer,
data.pages in a server-signed event, the console's pages, the bundle's files and `hoso verify`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil

import anyio
import pytest

from server.pages import service
from shared import pagecheck as checks
from shared.bundle import verify_bundle
from shared.pages import MAX_PAGE_PIXELS, pages_problem
from tests.api.test_console import console_login, csrf
from tests.pages_fixture import blurred, dark, jpeg, page_image
from tests.test_cli import run

HAS_OCR = service.ocr_available()
NO_OCR = "tesseract-ocr-vie is not installed here (.ci/run installs it): the text layer cannot be checked"
MAX_PX = MAX_PAGE_PIXELS


# ---- the page checks, pure ---------------------------------------------------------------------


def test_a_sharp_page_passes_and_a_blurred_one_is_refused_with_its_score():
    ok = checks.check_page(1, jpeg(page_image(1)), MAX_PX)
    assert ok.ok and ok.sharpness >= checks.MIN_SHARPNESS, ok
    bad = checks.check_page(3, jpeg(blurred(page_image(3))), MAX_PX)
    assert not bad.ok and bad.sharpness < checks.MIN_SHARPNESS
    [why] = bad.problems
    assert f"Trang 3 bị mờ (độ nét {bad.sharpness}, cần ≥ {checks.MIN_SHARPNESS})" in why
    assert "Page 3 is blurred" in why and "retake" in why


def test_a_dark_page_and_a_cut_off_page_are_refused():
    d = checks.check_page(2, jpeg(dark(page_image(2))), MAX_PX)
    assert d.luminance < checks.MIN_MEAN_LUMINANCE and "Trang 2 quá tối" in d.problems[0]
    assert "Page 2 is too dark" in d.problems[0]
    off = checks.check_page(1, jpeg(page_image(1, shift=(400, 0))), MAX_PX)  # sheet runs off the right
    assert off.problems and "cạnh phải" in off.problems[0] and "cut off at the right edge" in off.problems[0]
    top = checks.check_page(1, jpeg(page_image(1, desk=False, shift=(0, -120))), MAX_PX)  # text at the top
    assert top.problems and "top edge" in top.problems[0]


def test_a_tilted_page_is_measured_and_turned_level():
    r = checks.check_page(1, jpeg(page_image(1, tilt=3)), MAX_PX)
    assert r.ok and r.skew_deg == -3.0
    assert checks.straightened(jpeg(page_image(1)), 0.5) is None  # under 1°: the page's own bytes are kept
    assert checks.check_page(1, jpeg(page_image(1)), MAX_PX).skew_deg == 0.0


def _png_header(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IEND", b"")
    )


def test_unreadable_huge_transparent_and_turned_pages():
    import io

    from PIL import Image

    from server.errors import BadRequest, TooLarge

    with pytest.raises(TooLarge, match=r"Page 2: .*at most 12,000,000 pixels"):
        service.bind_images([(jpeg(page_image(1)), "image/jpeg"), (_png_header(20000, 20000), "image/png")])
    cut = jpeg(page_image(1))
    with pytest.raises(BadRequest, match=r"Page 1: .*damaged"):
        service.bind_images([(cut[: len(cut) // 3], "image/jpeg")], ocr=False)
    rgba = io.BytesIO()
    page_image(1).convert("RGBA").save(rgba, "PNG")
    bound = service.bind_images([(rgba.getvalue(), "image/png")], ocr=False)
    assert bound.pdf.startswith(b"%PDF-") and bound.pages[0][0] == rgba.getvalue()  # hashed as sent
    # a phone photo held sideways: stored as sent, turned upright for the PDF and the OCR
    sideways = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    page_image(1).rotate(90, expand=True).save(sideways, "JPEG", quality=85, exif=exif)
    report = checks.check_page(1, sideways.getvalue(), MAX_PX)
    assert report.ok, report.problems
    upright = checks.straightened(sideways.getvalue(), report.skew_deg)
    assert upright is not None and Image.open(io.BytesIO(upright)).size == (1600, 1200)


def test_data_pages_shape():
    good = {
        "pdf": "a" * 64,
        "pdf_bytes": 10,
        "ocr": "vie",
        "source": "photos",
        "pages": [{"sha256": "b" * 64, "sharpness": 5}],
    }
    assert pages_problem(good) is None
    assert "unknown members" in (pages_problem({**good, "x": 1}) or "")
    assert "original" in (pages_problem({**good, "source": "scanner_pdf"}) or "")
    assert "1 to 40" in (pages_problem({**good, "pages": []}) or "")


# ---- through the console --------------------------------------------------------------------------


async def _upload(client, code: str, files: list[tuple[str, bytes, str]]):
    page = await client.get(f"/console/shipments/{code}")
    token = csrf(page.text)
    return await client.post(
        f"/console/shipments/{code}/pages",
        data={"_csrf_token": token},
        files=[("page", f) for f in files],
        follow_redirects=False,
    )


async def _events(api, code: str) -> list[dict]:
    r = await api.call("GET", f"/api/v1/shipments/{code}/custody", "admin")
    return r.json()["events"]


async def test_counter_upload_makes_a_signed_pdf_that_verifies(api, tmp_path):
    created = await api.create_shipment()
    code = created["code"]
    client = api.client
    await console_login(client, "clerk")
    p1, p2 = jpeg(page_image(1)), jpeg(page_image(2, tilt=3))

    # a blurred page: refused with its score, nothing stored or signed
    r = await _upload(
        client, code, [("p1.jpg", p1, "image/jpeg"), ("p2.jpg", jpeg(blurred(page_image(2))), "image/jpeg")]
    )
    assert r.status_code == 422, r.text[-800:]
    assert 'id="pages-error"' in r.text and re.search(r"Trang 2 bị mờ \(độ nét \d+, cần ≥ 120\)", r.text)
    assert "Page 1" not in r.text.split('id="pages-error"')[1].split("</div>")[0]  # only the bad page
    assert [e["type"] for e in await _events(api, code)] == ["registered"]

    # bad inputs: nothing sent, not an image, too many pages
    r = await _upload(client, code, [])
    assert r.status_code == 400 and "No page was sent" in r.text
    r = await _upload(client, code, [("x.txt", b"hello", "text/plain")])
    assert r.status_code == 400 and "is not a JPEG, PNG or PDF" in r.text
    tiny = jpeg(page_image(1, size=(160, 120)))
    r = await _upload(client, code, [(f"{n}.jpg", tiny, "image/jpeg") for n in range(41)])
    assert r.status_code == 413 and "at most 40 pages" in r.text

    r = await _upload(client, code, [("p1.jpg", p1, "image/jpeg"), ("p2.jpg", p2, "image/jpeg")])
    assert r.status_code == 303 and r.headers["location"] == f"/console/shipments/{code}#pages", r.text[-800:]
    events = await _events(api, code)
    assert [e["type"] for e in events] == ["registered", "digitised"]
    ev = events[-1]
    pages = ev["data"]["pages"]
    assert ev["actor"] == f"clerk:{(await api.login('clerk')) and api.user_ids['clerk']}"
    assert [p["sha256"] for p in pages["pages"]] == [hashlib.sha256(b).hexdigest() for b in (p1, p2)]
    assert pages["pages"][1]["deskew_deg"] == -3.0 and "deskew_deg" not in pages["pages"][0]
    assert pages["ocr"] == ("vie" if HAS_OCR else "skipped")

    html = (await client.get(f"/console/shipments/{code}")).text
    assert html.count('class="thumb"') == 2 and f'href="/console/attachments/{pages["pdf"]}"' in html
    assert "Lê Thị Hoa" in html.split('id="pages"')[1] and 'data-verified="true"' in html
    thumb = await client.get(f"/console/attachments/{pages['pages'][0]['sha256']}/thumb")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    pdf = await client.get(f"/console/attachments/{pages['pdf']}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert hashlib.sha256(pdf.content).hexdigest() == pages["pdf"]
    (tmp_path / "dossier.pdf").write_bytes(pdf.content)
    if HAS_OCR and shutil.which("pdftotext"):
        done = await anyio.run_process(["pdftotext", str(tmp_path / "dossier.pdf"), "-"])
        text = done.stdout.decode()
        assert "ĐĂNG KÝ KHAI SINH" in text and "Nguyễn Thị Hương" in text, text

    # the auditor's bundle with the files; `hoso verify` checks them; a changed page fails it
    bundle = (await client.get(f"/console/shipments/{code}/custody.json?pages=true")).json()
    assert set(bundle["files"]) == {pages["pdf"], *(p["sha256"] for p in pages["pages"])}
    [paged] = [c for c in verify_bundle(bundle) if c.name == "digitised pages"]
    assert paged.ok and "3 file(s) match their hashes" in paged.notes[0]
    keys = tmp_path / "keys.json"
    keys.write_text((await client.get("/api/v1/keys")).text)
    honest = tmp_path / "bundle.json"
    honest.write_text(json.dumps(bundle))
    r = run(["verify", str(honest), "--trust", str(keys)], tmp_path)
    assert r.returncode == 0 and "[ok  ] digitised pages" in r.stdout, r.stdout + r.stderr
    page2 = pages["pages"][1]["sha256"]
    raw = bytearray(base64.urlsafe_b64decode(bundle["files"][page2] + "=="))
    raw[len(raw) // 2] ^= 0xFF
    bundle["files"][page2] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(bundle))
    r = run(["verify", str(tampered), "--trust", str(keys)], tmp_path)
    assert r.returncode == 1 and "[FAIL] digitised pages" in r.stdout and "page 2 has SHA-256" in r.stdout
    plain = (await client.get(f"/console/shipments/{code}/custody.json")).json()
    assert "files" not in plain  # without ?pages=true the bundle stays small

    # the citizen's page shows the step, never the pages
    citizen = (await client.get(f"/t/{code}")).text
    assert "Hồ sơ đã được số hóa" in citizen
    assert pages["pdf"] not in citizen and "/console/attachments" not in citizen and ".pdf" not in citizen

    # another unit's clerk: the shipment is not theirs, its pages do not exist for them
    await client.post("/console/logout", data={"_csrf_token": csrf(html)})
    await console_login(client, "shopclerk")
    for sha in (pages["pdf"], pages["pages"][0]["sha256"]):
        assert (await client.get(f"/console/attachments/{sha}")).status_code == 404
        assert (await client.get(f"/console/attachments/{sha}/thumb")).status_code == 404
    r = await client.post(
        f"/console/shipments/{code}/pages",
        data={"_csrf_token": csrf((await client.get("/console/")).text)},
        files=[("page", ("p1.jpg", p1, "image/jpeg"))],
        follow_redirects=False,
    )
    assert r.status_code in (403, 404), r.text[-300:]
    assert len(await _events(api, code)) == 2


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils is not installed")
async def test_a_scanner_pdf_is_checked_page_by_page(api, tmp_path):
    import img2pdf

    created = await api.create_shipment()
    client = api.client
    await console_login(client, "clerk")
    scan = img2pdf.convert([jpeg(page_image(1, desk=False)), jpeg(page_image(2, desk=False))])
    r = await _upload(client, created["code"], [("scan.pdf", scan, "application/pdf")])
    assert r.status_code == 303, r.text[-800:]
    pages = (await _events(api, created["code"]))[-1]["data"]["pages"]
    assert pages["source"] == "scanner_pdf" and len(pages["pages"]) == 2
    assert pages["original"] == hashlib.sha256(scan).hexdigest()
    r = await _upload(client, created["code"], [("scan.pdf", b"%PDF-1.4 broken", "application/pdf")])
    assert r.status_code == 400 and "damaged" in r.text
