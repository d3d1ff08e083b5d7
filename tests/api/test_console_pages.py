"""The couriers page (workload, positions without outside requests, or tiles when configured)
and the reports page (the same figures as the API, charts as SVG, CSV)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from tests.api.test_console import console_login
from tests.api.test_reports import seed_report_data


async def test_couriers_workload_and_positions(api):
    await seed_report_data(api)
    client = api.client
    await console_login(client, "dispatcher")
    r = await client.get("/console/couriers")
    assert r.status_code == 200, r.text[-500:]
    c1 = re.search(rf'<tr data-courier="{api.user_ids["courier1"]}".*?</tr>', r.text, re.S).group(0)
    cells = re.findall(r"<td>(\d+)</td>", c1)
    # courier1 carries S4 (late) and R2; delivered S1, S2, R1, R3 and failed 4 times today (all synced now)
    assert cells == ["0", "2", "0", "1", "4", "4"], cells
    assert "Nguyễn Văn Hùng" in r.text and "<svg" in r.text and 'fill="#1b7f3a"' in r.text
    body = r.text.split("<main>")[1].replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in body and "https://" not in body  # nothing fetched from outside
    assert "img-src 'self' data: ;" in r.headers["content-security-policy"]


@pytest.fixture
async def tiled_client(settings):
    app = create_app(settings.with_(tile_url="https://tiles.example.vn/{z}/{x}/{y}.png"))
    async with AsyncTestClient(app, base_url="http://testserver") as c:
        yield c


async def test_couriers_map_uses_the_tile_server_when_set(api, tiled_client):
    await seed_report_data(api)
    await console_login(tiled_client, "dispatcher")
    r = await tiled_client.get("/console/couriers")
    assert r.status_code == 200
    tiles = re.findall(r'<image href="https://tiles\.example\.vn/(\d+)/(\d+)/(\d+)\.png"', r.text)
    assert tiles and all(int(z) >= 10 for z, _, _ in tiles)
    assert "img-src 'self' data: https://tiles.example.vn;" in r.headers["content-security-policy"]


async def test_reports_page_and_its_csv(api):
    await seed_report_data(api)
    client = api.client
    await console_login(client, "auditor")
    r = await client.get("/console/reports")
    assert r.status_code == 200, r.text[-500:]
    assert '<span id="total">8</span>' in r.text
    assert 'id="door-to-desk">4 giờ' in r.text and 'id="desk-to-door">4,25 giờ' in r.text
    assert r.text.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 5
    assert 'aria-label="Tỷ lệ đúng hạn (%): 80 %"' in r.text
    shop = re.search(r'<tr data-unit="TTHCC-GL">.*?</tr>', r.text, re.S).group(0)
    assert "3 / 5" in shop and "60,0" in shop and "2 / 3" in shop and "66,7" in shop
    csv_url = re.search(r'href="(/console/reports\?[^"]*format=csv)"', r.text).group(1)
    r = await client.get(csv_url.replace("&amp;", "&"))
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert ["Đúng hạn", "Tỷ lệ đúng hạn (%)", "80.0"] in rows
    r = await client.get("/console/reports?from=2026-13-01")
    assert r.status_code == 400 and "`from` must be a date" in r.text
    client.cookies.clear()
    await console_login(client, "clerk")
    assert (await client.get("/console/reports")).status_code == 403
