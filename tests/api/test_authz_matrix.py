"""Who may call what: every route of the app × every kind of caller, written down.

The routes come from `create_app(settings).routes`; a route missing from `EXPECTED` fails
the test, so a new route cannot slip in without someone deciding who may use it.
One seeded database per backend serves the whole matrix (one test per backend).

The shipment `S` the routes act on was registered by BC-PLEIKU's clerk (no destination
unit), is assigned to courier1 and held by them (picked up, with a signature). The other
unit is the one-stop shop TTHCC-GL (`shopclerk`, `shopdispatcher`).

Outcomes: `ok` the call got past authentication, the role and the unit scope (2xx, 3xx
other than to the sign-in page, or a 400/409/413/422 about the request itself); `401`;
`login` (a console page redirecting to sign in); `403`; `404` (also how an attachment or a
handover the caller may not see is answered).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from server.app import create_app
from server.console import live
from tests.api.conftest import PNG_1PX
from tests.conftest import PASSWORD
from tests.pages_fixture import jpeg, page_image

CALLERS = (
    "anonymous",
    "courier assigned",
    "courier not assigned",
    "clerk own unit",
    "clerk other unit",
    "dispatcher own unit",
    "dispatcher other unit",
    "auditor",
    "admin",
    "api key",  # BC-PLEIKU's software (server/intake): two routes, nothing else
)
ACCOUNTS = {
    "courier assigned": "courier1",
    "courier not assigned": "courier2",
    "clerk own unit": "clerk",
    "clerk other unit": "shopclerk",
    "dispatcher own unit": "dispatcher",
    "dispatcher other unit": "shopdispatcher",
    "auditor": "auditor",
    "admin": "admin",
}
SIG = hashlib.sha256(PNG_1PX).hexdigest()
PAGE = jpeg(page_image(1))  # a page photo that passes the checks

# one line per route: the outcome for each caller, in the order of CALLERS
# fmt: off
EXPECTED: dict[tuple[str, str], str] = {
    # public
    ("GET", "/health"):                                    "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/api/v1/keys"):                               "ok ok ok ok ok ok ok ok ok ok",
    ("POST", "/api/v1/auth/token"):                        "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/api/v1/log/head"):                           "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/api/v1/log/inclusion"):                      "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/api/v1/log/consistency"):                    "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/api/v1/log/checkpoint"):                     "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/api/v1/log/tile/{rest:path}"):               "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/t/{code:str}"):                              "ok ok ok ok ok ok ok ok ok ok",
    ("POST", "/t/{code:str}/confirm"):                     "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/console/login"):                             "ok ok ok ok ok ok ok ok ok ok",
    ("POST", "/console/login"):                            "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/console/lang/{lang:str}"):                   "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/console/static/{file_path:path}"):           "ok ok ok ok ok ok ok ok ok ok",
    ("HEAD", "/console/static/{file_path:path}"):          "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema"):                                    "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/openapi.json"):                       "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/openapi.yaml"):                       "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/openapi.yml"):                        "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/redoc"):                              "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/rapidoc"):                            "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/swagger"):                            "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/elements"):                           "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/oauth2-redirect.html"):               "ok ok ok ok ok ok ok ok ok ok",
    ("GET", "/schema/{path:str}"):                         "404 404 404 404 404 404 404 404 404 404",
    # accounts and devices
    ("POST", "/api/v1/units"):                             "401 403 403 403 403 403 403 403 ok 403",
    ("POST", "/api/v1/users"):                             "401 403 403 403 403 403 403 403 ok 403",
    ("POST", "/api/v1/devices"):                           "401 ok ok 403 403 403 403 403 403 403",
    # shipments
    ("POST", "/api/v1/shipments"):                         "401 403 403 ok ok ok ok 403 403 ok",
    ("GET", "/api/v1/shipments"):                          "401 403 403 ok ok ok ok ok ok 403",
    ("GET", "/api/v1/shipments/{code:str}"):               "401 ok 403 ok 403 ok 403 ok ok ok",
    ("POST", "/api/v1/shipments/{code:str}/assign"):       "401 403 403 403 403 ok 403 403 403 403",
    ("POST", "/api/v1/shipments/{code:str}/cancel"):       "401 403 403 ok 403 ok 403 403 403 403",
    ("GET", "/api/v1/me/assignments"):                     "401 ok ok 403 403 403 403 403 403 403",
    # custody
    ("POST", "/api/v1/events"):                            "401 ok ok 403 403 403 403 403 403 403",
    ("PUT", "/api/v1/attachments/{sha256:str}"):           "401 ok ok ok ok ok ok 403 ok 403",
    ("GET", "/api/v1/attachments/{sha256:str}"):           "401 403 403 ok 404 ok 404 ok ok 403",
    ("GET", "/api/v1/shipments/{code:str}/custody"):       "401 403 403 ok 403 ok 403 ok ok 403",
    ("POST", "/api/v1/log/witness"):                       "401 403 403 ok ok 403 403 403 403 403",
    ("GET", "/api/v1/me/handovers"):                       "401 ok ok 403 403 403 403 403 403 403",
    ("POST", "/api/v1/me/stops/{code:str}/pin-check"):     "401 ok 403 403 403 403 403 403 403 403",
    # pages photographed at the pickup: only the courier who holds the dossier (issue 18)
    ("POST", "/api/v1/shipments/{code:str}/pages"):        "401 ok 403 403 403 403 403 403 403 403",
    # labels and documents
    ("GET", "/api/v1/shipments/{code:str}/label.png"):     "401 403 403 ok 403 ok 403 403 ok 403",
    ("GET", "/api/v1/shipments/{code:str}/label.pdf"):     "401 403 403 ok 403 ok 403 403 ok 403",
    ("POST", "/api/v1/labels.pdf"):                        "401 403 403 ok 403 ok 403 403 ok 403",
    ("POST", "/api/v1/shipments/{code:str}/receipt.pdf"):  "401 ok 403 ok 403 ok 403 403 ok 403",
    ("POST", "/api/v1/handovers.pdf"):                     "401 403 403 ok 403 ok 403 ok ok 403",
    ("GET", "/api/v1/shipments/{code:str}/delivery.pdf"):  "401 403 403 ok 403 ok 403 ok ok 403",
    # reports
    ("GET", "/api/v1/reports/summary"):                    "401 403 403 403 ok ok ok ok ok 403",
    # the one-stop shop (its unit is TTHCC-GL, the "other unit" here)
    ("GET", "/api/v1/units/{unit:str}/procedures"):        "401 403 403 ok ok ok ok ok ok 403",
    ("PUT", "/api/v1/units/{unit:str}/procedures"):        "401 403 403 403 ok 403 ok 403 ok 403",
    ("PUT", "/api/v1/units/{unit:str}/procedures/{code:str}"): "401 403 403 403 ok 403 ok 403 ok 403",
    ("DELETE", "/api/v1/units/{unit:str}/procedures/{code:str}"): "401 403 403 403 404 403 404 403 404 403",
    ("GET", "/api/v1/units/{unit:str}/registers"):         "401 403 403 ok ok ok ok ok ok 403",
    ("PUT", "/api/v1/units/{unit:str}/register"):          "401 403 403 403 ok 403 ok 403 ok 403",
    ("PUT", "/api/v1/units/{unit:str}/province"):          "401 403 403 403 403 403 403 403 ok 403",
    ("PUT", "/api/v1/provinces/{province:str}/scoring"):   "401 403 403 403 403 403 403 403 ok 403",
    ("GET", "/api/v1/scoring"):                            "401 403 403 ok ok ok ok ok ok 403",
    # console
    ("GET", "/console"):                                   "login 403 403 ok ok ok ok ok ok login",
    ("GET", "/console/board/rows"):                        "login 403 403 ok ok ok ok ok ok login",
    ("GET", "/console/live"):                              "login 403 403 ok ok ok ok ok ok login",
    ("POST", "/console/shipments/{code:str}/assign"):      "login 403 403 403 403 ok 403 403 ok login",
    ("GET", "/console/shipments/{code:str}"):              "login 403 403 ok 403 ok 403 ok ok login",
    ("GET", "/console/shipments/{code:str}/custody.json"): "login 403 403 ok 403 ok 403 ok ok login",
    ("GET", "/console/attachments/{sha256:str}"):          "login 403 403 ok 404 ok 404 ok ok login",
    ("GET", "/console/attachments/{sha256:str}/thumb"):    "login 403 403 ok 404 ok 404 ok ok login",
    ("POST", "/console/shipments/{code:str}/pages"):       "login 403 403 ok 403 ok 403 403 403 login",
    ("GET", "/console/provinces.json"):                    "login 403 403 ok ok ok ok ok ok login",
    ("GET", "/console/register"):                          "login 403 403 ok ok ok ok 403 ok login",
    ("POST", "/console/register"):                         "login 403 403 ok ok ok ok 403 ok login",
    ("GET", "/console/labels"):                            "login 403 403 ok ok ok ok 403 ok login",
    ("POST", "/console/labels.pdf"):                       "login 403 403 ok 403 ok 403 403 ok login",
    ("GET", "/console/shipments/{code:str}/label.pdf"):    "login 403 403 ok 403 ok 403 403 ok login",
    ("GET", "/console/shipments/{code:str}/label.png"):    "login 403 403 ok 403 ok 403 403 ok login",
    ("GET", "/console/shipments/{code:str}/receipt.pdf"):  "login 403 403 ok 403 ok 403 403 ok login",
    ("POST", "/console/shipments/{code:str}/receipt.pdf"): "login 403 403 ok 403 ok 403 403 ok login",
    # the counter (issue 18): a unit's clerk only; the receipt and a collection follow the unit scope
    ("GET", "/console/counter"):                           "login 403 403 ok ok 403 403 403 403 login",
    ("POST", "/console/counter"):                          "login 403 403 ok ok 403 403 403 403 login",
    ("POST", "/console/counter/{code:str}/receipt.pdf"):   "login 403 403 ok 403 403 403 403 403 login",
    ("GET", "/console/counter/collect"):                   "login 403 403 ok ok 403 403 403 403 login",
    ("POST", "/console/counter/collect"):                  "login 403 403 ok 403 403 403 403 403 login",
    # the outbox's dead letters (issue 17): an unknown message id is a 404 to the admin
    ("GET", "/console/outbox"):                            "login 403 403 403 403 403 403 403 ok login",
    ("POST", "/console/outbox/{message_id:int}/retry"):    "login 403 403 403 403 403 403 403 404 login",
    ("GET", "/console/intake"):                            "login 403 403 ok ok ok ok 403 403 login",
    ("POST", "/console/intake"):                           "login 403 403 ok ok ok ok 403 403 login",
    ("GET", "/console/intake/template.xlsx"):              "login 403 403 ok ok ok ok 403 403 login",
    ("GET", "/console/intake/template.csv"):               "login 403 403 ok ok ok ok 403 403 login",
    ("GET", "/console/receive"):                           "login 403 403 ok ok 403 403 403 ok login",
    ("POST", "/console/receive"):                          "login 403 403 ok ok 403 403 403 ok login",
    ("GET", "/console/handovers/{handover_id:int}"):       "login 403 403 ok 404 403 403 403 ok login",
    ("GET", "/console/couriers"):                          "login 403 403 403 403 ok ok 403 ok login",
    ("GET", "/console/reports"):                           "login 403 403 403 ok ok ok ok ok login",
    ("GET", "/console/shop"):                              "login 403 403 ok ok ok ok ok ok login",
    ("GET", "/console/shop/procedures.json"):              "login 403 403 ok ok ok ok ok ok login",
    ("POST", "/console/shop/catalogue"):                   "login 403 403 403 ok 403 ok 403 ok login",
    ("POST", "/console/shop/register"):                    "login 403 403 403 ok 403 ok 403 ok login",
    ("POST", "/console/shop/procedure"):                   "login 403 403 403 ok 403 ok 403 ok login",
    ("POST", "/console/shop/procedure/delete"):            "login 403 403 403 404 403 404 403 404 login",
    ("GET", "/console/scoring"):                           "login 403 403 403 403 403 403 403 ok login",
    ("POST", "/console/scoring"):                          "login 403 403 403 403 403 403 403 ok login",
    ("POST", "/console/scoring/province"):                 "login 403 403 403 403 403 403 403 ok login",
    ("POST", "/console/logout"):                           "login 403 403 ok ok ok ok ok ok login",
    # money: the cashier is a clerk of the courier's post office (BC-PLEIKU)
    ("POST", "/api/v1/remittances"):                       "401 403 403 ok 404 403 403 403 ok 403",
    ("GET", "/api/v1/remittances/{remittance_id:int}"):    "401 403 403 ok 404 ok 404 ok ok 403",
    ("GET", "/console/money"):                             "login 403 403 ok ok ok ok ok ok login",
    ("GET", "/console/money/remit"):                       "login 403 403 ok 404 403 403 403 ok login",
    ("POST", "/console/money/remit"):                      "login 403 403 ok 404 403 403 403 ok login",
    ("GET", "/console/money/remittances/{remittance_id:int}"): "login 403 403 ok 404 ok 404 ok ok login",
    ("GET", "/console/money/remittances/{remittance_id:int}/signature.png"):
                                                           "login 403 403 ok 404 ok 404 ok ok login",
    ("GET", "/console/money/statement"):                   "login 403 403 ok ok ok ok ok ok login",
}
# fmt: on
LAST = ("POST", "/console/logout")  # it ends the caller's session: asked last


@dataclass
class Seeded:
    code: str
    handover_id: int
    courier_id: int
    tokens: dict[str, str] = field(default_factory=dict)
    remittance_id: int = 0


def _request(method: str, path: str, s: Seeded, caller: str, n: int) -> dict[str, Any]:
    """The request for one cell: a well-formed one, so a refusal can only come from authorization."""
    url = (
        path.replace("{code:str}", s.code)
        .replace("{sha256:str}", SIG)
        .replace("{handover_id:int}", str(s.handover_id))
        .replace("{remittance_id:int}", str(s.remittance_id))
        .replace("{message_id:int}", "999999")
        .replace("{lang:str}", "en")
        .replace("{file_path:path}", "console.css")
        .replace("{path:str}", "nothing-here")
        .replace("{unit:str}", "TTHCC-GL")
        .replace("{province:str}", "Tỉnh Gia Lai")
        .replace("{rest:path}", "0/000.p/1")
    )
    if path.endswith("/register") and url.startswith("/api/"):
        url += "?from=2026-10-01&to=2026-10-31"  # the body (none) is then refused: a 422 after the guard
    kw: dict[str, Any] = {}
    form: dict[str, str] | None = None
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/auth/token"): {"username": "auditor", "password": PASSWORD},
        ("POST", "/api/v1/units"): {"code": f"BC-M{n}", "name": "Bưu cục thử", "kind": "post_office"},
        ("POST", "/api/v1/users"): {
            "username": f"matrix{n}",
            "password": PASSWORD,
            "role": "courier",
            "unit": "BC-PLEIKU",
        },
        ("POST", "/api/v1/devices"): {"public_key": "A" * 43, "label": "matrix"},
        ("POST", "/api/v1/shipments/{code:str}/assign"): {"courier_id": s.courier_id},
        ("POST", "/api/v1/shipments/{code:str}/cancel"): {"reason": "thử quyền"},
        ("POST", "/api/v1/events"): {"events": []},
        ("POST", "/api/v1/me/stops/{code:str}/pin-check"): {"sealed": "A" * 64},  # a 422 after the guard
        ("POST", "/api/v1/log/witness"): {},
        ("POST", "/api/v1/labels.pdf"): {"codes": [s.code]},
        ("POST", "/api/v1/shipments/{code:str}/receipt.pdf"): {},
        ("POST", "/api/v1/handovers.pdf"): {"codes": [s.code]},
        ("POST", "/api/v1/shipments"): {"kind": "submission"},  # incomplete: a 400 after the guard
        ("POST", "/api/v1/remittances"): {  # the first one records it, the later ones get 409
            "courier_id": s.courier_id,
            "codes": [s.code],
            "amount_vnd": 50000,
            "signature_png": base64.b64encode(PNG_1PX).decode(),
        },
        ("PUT", "/api/v1/units/{unit:str}/procedures/{code:str}"): {"name": "Thủ tục thử quyền"},
        ("PUT", "/api/v1/units/{unit:str}/province"): {"province": "Tỉnh Gia Lai"},
        ("PUT", "/api/v1/provinces/{province:str}/scoring"): {"effective_from": "2026-01-01", "rules": []},
    }
    body = bodies.get((method, path))
    if body is not None:
        kw["json"] = body
    if (method, path) == ("POST", "/api/v1/shipments/{code:str}/pages"):
        kw["files"] = [("page", ("p1.jpg", PAGE, "image/jpeg"))]
    if (method, path) == ("PUT", "/api/v1/attachments/{sha256:str}"):
        kw["content"] = PNG_1PX
        kw["headers"] = {"Content-Type": "image/png"}
    if path == "/console/login" and method == "POST":
        form = {"username": "auditor", "password": PASSWORD}
    elif path == "/console/shipments/{code:str}/assign":
        form = {"courier_id": str(s.courier_id)}
    elif path == "/console/labels.pdf":
        form = {"code": s.code}
    elif path == "/console/counter/collect" and method == "POST":
        form = {  # S is a submission: refused (409) by its own unit's clerk, unseen (403) elsewhere
            "code": s.code,
            "name": "Nguyễn Thị Bích",
            "id_last4": "4821",
            "signature_png": "data:image/png;base64," + base64.b64encode(PNG_1PX).decode(),
        }
    elif path in ("/console/register", "/console/receive", "/console/counter") and method == "POST":
        form = {}  # refused as incomplete, after the guard
    elif path == "/console/money/remit" and method == "POST":
        form = {
            "courier_id": str(s.courier_id),
            "code": s.code,
            "amount_vnd": "50000",
            "signature_png": "data:image/png;base64," + base64.b64encode(PNG_1PX).decode(),
        }
    elif (path.startswith("/console/shop/") or path == "/console/scoring/province") and method == "POST":
        form = {"unit": "TTHCC-GL"}  # no file, no fields: refused as incomplete, after the guard
    elif path == "/t/{code:str}/confirm":
        form = {"rating": "9"}
    if form is not None or (method == "POST" and not url.startswith("/api/")):
        kw["data"] = {**(form or {}), "_csrf_token": s.tokens["csrf"]}
    if path == "/console/money/remit" and method == "GET":
        url += f"?courier={s.courier_id}"
    if path == "/console/money/statement":
        url += "?agency=TTHCC-GL"
    headers = kw.setdefault("headers", {})
    cookies = {"csrftoken": s.tokens["csrf cookie"]}
    account = ACCOUNTS.get(caller)
    if caller == "api key" and url.startswith("/api/"):
        headers["Authorization"] = f"Bearer {s.tokens['api key']}"
    if account:
        if url.startswith("/console"):
            cookies["hoso_session"] = s.tokens[account]
        else:
            headers["Authorization"] = f"Bearer {s.tokens[account]}"
    headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return {"method": method, "url": url, **kw}


def _outcome(status: int, location: str) -> str:
    if status == 303 and location.startswith("/console/login?next="):  # not signing out
        return "login"
    if status in (401, 403, 404):
        return str(status)
    if status >= 500:
        return f"error {status}"
    return "ok"


async def _seed(api) -> Seeded:
    png = {"Content-Type": "image/png"}
    for account in ACCOUNTS.values():
        await api.login(account)
    made = await api.create_shipment()
    code = made["code"]
    await api.assign(code, dispatcher="dispatcher")
    r = await api.call("PUT", f"/api/v1/attachments/{SIG}", "courier1", content=PNG_1PX, headers=png)
    assert r.status_code in (200, 201)
    e1 = await api.event("courier1", code, "picked_up", made["head"])
    assert (await api.sync("courier1", [e1])).json()["results"][0]["status"] == "accepted"
    # a second envelope courier1 hands to BC-PLEIKU's counter: the handover slip to look at
    other = await api.create_shipment(dest_unit="BC-PLEIKU")
    await api.assign(other["code"], dispatcher="dispatcher")
    e2 = await api.event("courier1", other["code"], "picked_up", other["head"])
    assert (await api.sync("courier1", [e2])).json()["results"][0]["status"] == "accepted"
    client = api.client
    page = await client.get("/console/login")
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    csrf_cookie = client.cookies.get("csrftoken")
    tokens = {a: api._tokens[a] for a in ACCOUNTS.values()}
    tokens |= {"csrf": csrf, "csrf cookie": csrf_cookie}
    from tests.api.test_console_clerk import _signature_data_url

    client.cookies.clear()
    r = await client.post(
        "/console/receive",
        data={
            "courier_id": str(api.user_ids["courier1"]),
            "code": [other["code"]],
            "signature_png": _signature_data_url(),
            "signature_strokes": "",
            "_csrf_token": csrf,
        },
        headers={"Cookie": f"csrftoken={csrf_cookie}; hoso_session={tokens['clerk']}"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    handover_id = int(r.headers["location"].rsplit("/", 1)[1])
    # the fee courier1 collected for the other envelope, remitted at BC-PLEIKU: the slip to look at
    r = await api.call(
        "POST",
        "/api/v1/remittances",
        "clerk",
        json={
            "courier_id": api.user_ids["courier1"],
            "codes": [other["code"]],
            "amount_vnd": 50000,
            "signature_png": base64.b64encode(PNG_1PX).decode(),
        },
    )
    assert r.status_code == 201, r.text
    return Seeded(
        code=code,
        handover_id=handover_id,
        courier_id=api.user_ids["courier1"],
        tokens=tokens,
        remittance_id=r.json()["id"],
    )


def _routes(app) -> list[tuple[str, str]]:
    """(method, path) of every handler the app serves, less Litestar's own OPTIONS answers."""
    out = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method != "OPTIONS":
                    out.add((method, route.path))
    return sorted(out)


async def _finite_stream(plugin, db, user):
    """Stands in for the endless SSE stream: the guard and the dependencies still run."""
    from litestar.response import ServerSentEventMessage

    yield ServerSentEventMessage(event="ready", data="{}")


async def test_every_route_for_every_caller(api, settings, monkeypatch):
    monkeypatch.setattr(live, "stream", _finite_stream)
    routes = _routes(create_app(settings))
    missing = [r for r in routes if r not in EXPECTED]
    assert not missing, f"routes without a row in EXPECTED (decide who may call them): {missing}"
    stale = [r for r in EXPECTED if r not in routes]
    assert not stale, f"rows in EXPECTED for routes the app no longer has: {stale}"
    s = await _seed(api)
    from server.db.engine import Database
    from server.intake import service as intake

    database = Database(settings.db_url)
    try:
        s.tokens["api key"] = (await intake.create_key(database, "BC-PLEIKU", "matrix")).key
    finally:
        await database.dispose()
    started = time.monotonic()
    wrong = []
    cells = 0
    client = api.client
    for n, (method, path) in enumerate(sorted(routes, key=lambda r: r == LAST)):
        want = EXPECTED[(method, path)].split()
        assert len(want) == len(CALLERS), (method, path)
        for caller, expected in zip(CALLERS, want, strict=True):
            client.cookies.clear()
            req = _request(method, path, s, caller, n * 10 + CALLERS.index(caller))
            r = await client.request(follow_redirects=False, **req)
            got = _outcome(r.status_code, r.headers.get("location", ""))
            cells += 1
            if got != expected:
                wrong.append(
                    f"{method} {path} as {caller}: expected {expected}, got {got} ({r.text[:120]!r})"
                )
    elapsed = time.monotonic() - started
    if os.environ.get("HOSO_TEST_MATRIX_REPORT"):
        size = f"{len(routes)} routes × {len(CALLERS)} callers = {cells} cells"
        print(f"authorization matrix: {size}, {elapsed:.1f} s")
    assert not wrong, "\n".join(wrong)
    assert elapsed < 120, f"the matrix took {elapsed:.0f} s"


def test_the_table_has_a_column_per_caller():
    bad = [k for k, v in EXPECTED.items() if len(v.split()) != len(CALLERS)]
    assert not bad, bad
