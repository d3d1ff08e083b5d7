"""The one-stop shop's side of a handover, driven through the console's forms over HTTP."""

from __future__ import annotations

import io

from PIL import Image

from bench._harness import PASSWORD, Server


def console_receive(srv: Server, clerk: str, courier_id: int, codes: list[str]) -> None:
    """The one-stop shop's clerk receives a courier's batch on the console and signs on screen."""
    import base64
    import re

    import httpx
    from PIL import ImageDraw

    img = Image.new("RGB", (300, 100), "white")
    ImageDraw.Draw(img).line([(10, 60), (80, 20), (150, 80), (290, 30)], fill=(20, 30, 120), width=3)
    out = io.BytesIO()
    img.save(out, format="PNG")
    png = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()

    def csrf(html: str) -> str:
        return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)

    with httpx.Client(base_url=srv.base, timeout=30) as console:
        page = console.get("/console/login")
        console.post(
            "/console/login",
            data={"username": clerk, "password": PASSWORD, "next": "", "_csrf_token": csrf(page.text)},
        )
        page = console.get(f"/console/receive?courier={courier_id}")
        r = console.post(
            "/console/receive",
            data={
                "courier_id": str(courier_id),
                "code": codes,
                "signature_png": png,
                "signature_strokes": '{"w":300,"h":100,"strokes":[[[10,60,0],[80,20,40]]]}',
                "_csrf_token": csrf(page.text),
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text[-300:]


def console_counter(srv: Server, clerk: str, form: dict) -> str:
    """A dossier handed in at the clerk's counter ("other" procedure, typed); returns its code."""
    import base64
    import re

    import httpx
    from PIL import ImageDraw

    img = Image.new("RGB", (300, 100), "white")
    ImageDraw.Draw(img).line([(10, 60), (80, 20), (150, 80), (290, 30)], fill=(20, 30, 120), width=3)
    out = io.BytesIO()
    img.save(out, format="PNG")
    png = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()

    def csrf(html: str) -> str:
        return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)

    with httpx.Client(base_url=srv.base, timeout=30) as console:
        page = console.get("/console/login")
        console.post(
            "/console/login",
            data={"username": clerk, "password": PASSWORD, "next": "", "_csrf_token": csrf(page.text)},
        )
        page = console.get(f"/console/counter/?dest={form['dest_unit']}&procedure=other")
        r = console.post(
            "/console/counter/",
            data={**form, "signature_png": png, "signature_strokes": "", "_csrf_token": csrf(page.text)},
        )
        assert r.status_code == 200, r.text[-500:]
        return re.search(r"/console/counter/(\d{13})/receipt.pdf", r.text).group(1)
