"""The one-stop shop's side of a handover, driven through the console's forms over HTTP."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from PIL import Image, ImageDraw

from bench._harness import PASSWORD, Server


def _signature_png() -> str:
    """A hand-drawn-looking signature as the console's pad posts it (a data URL)."""
    img = Image.new("RGB", (300, 100), "white")
    ImageDraw.Draw(img).line([(10, 60), (80, 20), (150, 80), (290, 30)], fill=(20, 30, 120), width=3)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _csrf(html: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


@contextmanager
def _signed_in(srv: Server, clerk: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base, timeout=30) as console:
        page = console.get("/console/login")
        console.post(
            "/console/login",
            data={"username": clerk, "password": PASSWORD, "next": "", "_csrf_token": _csrf(page.text)},
        )
        yield console


def console_receive(srv: Server, clerk: str, courier_id: int, codes: list[str]) -> None:
    """The one-stop shop's clerk receives a courier's batch on the console and signs on screen."""
    with _signed_in(srv, clerk) as console:
        page = console.get(f"/console/receive?courier={courier_id}")
        r = console.post(
            "/console/receive",
            data={
                "courier_id": str(courier_id),
                "code": codes,
                "signature_png": _signature_png(),
                "signature_strokes": '{"w":300,"h":100,"strokes":[[[10,60,0],[80,20,40]]]}',
                "_csrf_token": _csrf(page.text),
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text[-300:]


def console_counter(srv: Server, clerk: str, form: dict) -> str:
    """A dossier handed in at the clerk's counter ("other" procedure, typed); returns its code."""
    with _signed_in(srv, clerk) as console:
        page = console.get(f"/console/counter/?dest={form['dest_unit']}&procedure=other")
        r = console.post(
            "/console/counter/",
            data={
                **form,
                "signature_png": _signature_png(),
                "signature_strokes": "",
                "_csrf_token": _csrf(page.text),
            },
        )
        assert r.status_code == 200, r.text[-500:]
        found = re.search(r"/console/counter/(\d{13})/receipt.pdf", r.text)
        assert found is not None, "no receipt link on the answer page"
        return found.group(1)
