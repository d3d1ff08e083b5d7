from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from shared.crypto import SigningKey
from shared.events import new_event_id, sign_event
from shared.timeutil import to_wire, utcnow
from tests.conftest import PASSWORD

PARTY_CITIZEN = {
    "name": "Nguyễn Thị Bích",
    "phone": "0905123456",
    "address": "12 Trần Hưng Đạo",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "id_last4": "4821",
    "lat": 13.9833,
    "lon": 108.0,
}
PARTY_AGENCY = {
    "name": "Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
    "address": "2 Trần Phú",
    "commune": "Phường Pleiku",
    "province": "Tỉnh Gia Lai",
    "lat": 13.9760,
    "lon": 108.0050,
}


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (4, 2), 0).save(out, format="PNG")
    return out.getvalue()


PNG_1PX = _tiny_png()


class Api:
    """A thin client that signs in as any seeded user and builds signed events."""

    def __init__(self, client: AsyncTestClient) -> None:
        self.client = client
        self._tokens: dict[str, str] = {}
        self.devices: dict[str, SigningKey] = {}
        self.user_ids: dict[str, int] = {}

    async def login(self, username: str) -> dict[str, str]:
        if username not in self._tokens:
            r = await self.client.post(
                "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
            self._tokens[username] = r.json()["access_token"]
            self.user_ids[username] = r.json()["user"]["id"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    async def call(self, method: str, path: str, user: str | None = None, **kw: Any):
        headers = kw.pop("headers", {})
        if user:
            headers.update(await self.login(user))
        return await self.client.request(method, path, headers=headers, **kw)

    async def enroll(self, courier: str) -> SigningKey:
        if courier not in self.devices:
            key = SigningKey.generate()
            r = await self.call(
                "POST",
                "/api/v1/devices",
                courier,
                json={"public_key": key.public_key_b64, "label": "test phone"},
            )
            assert r.status_code == 201, r.text
            self.devices[courier] = key
        return self.devices[courier]

    async def create_shipment(self, kind: str = "submission", user: str = "clerk", **over: Any) -> dict:
        body = {
            "kind": kind,
            "dossier_ref": "000.00.12.H21-261122-0001",
            "procedure": "Đăng ký khai sinh",
            "field": "Tư pháp - Hộ tịch",
            "sender": PARTY_CITIZEN if kind == "submission" else PARTY_AGENCY,
            "recipient": PARTY_AGENCY if kind == "submission" else PARTY_CITIZEN,
            "due_at": to_wire(utcnow() + timedelta(days=3)),
            "fee_vnd": 50000,
            "components": ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)"],
            **over,
        }
        r = await self.call("POST", "/api/v1/shipments", user, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def assign(self, code: str, courier: str = "courier1", dispatcher: str | None = None) -> None:
        """Assign as the given dispatcher, else as the one whose unit may act on the shipment:
        the post office's, or the one-stop shop's for what the shop registered."""
        await self.login(courier)
        for by in [dispatcher] if dispatcher else ["dispatcher", "shopdispatcher"]:
            r = await self.call(
                "POST",
                f"/api/v1/shipments/{code}/assign",
                by,
                json={"courier_id": self.user_ids[courier]},
            )
            if r.status_code != 403:
                break
        assert r.status_code == 200, r.text

    async def shipment(self, code: str, user: str = "admin") -> dict:
        r = await self.call("GET", f"/api/v1/shipments/{code}", user)
        assert r.status_code == 200, r.text
        return r.json()

    async def event(self, courier: str, code: str, type_: str, prev: str | None, **over: Any) -> dict:
        key = await self.enroll(courier)
        await self.login(courier)
        fields: dict[str, Any] = dict(
            id=new_event_id(),
            shipment=code,
            type=type_,
            occurred_at=to_wire(datetime.now(UTC)),
            actor=f"courier:{self.user_ids[courier]}",
            counterparty={"name": "Nguyễn Thị Bích", "role": "citizen", "id_last4": "4821"},
            location={
                "lat": 13.9834,
                "lon": 108.0002,
                "accuracy_m": 8.5,
                "fix_at": to_wire(datetime.now(UTC)),
            },
            attachments={"signature": hashlib.sha256(PNG_1PX).hexdigest(), "photos": []},
            data={},
            prev=prev,
        )
        if type_ == "picked_up":
            fields["data"] = {"components": ["Tờ khai đăng ký khai sinh"], "fee_vnd": 50000}
        if type_ == "delivered":
            fields["data"] = {"identity": {"method": "id_last4"}}
        if type_ == "delivery_failed":
            fields["counterparty"] = None
            fields["attachments"] = {"signature": None, "photos": []}
            fields["data"] = {"reason": "not_home"}
        fields.update(over)
        return msgspec.to_builtins(sign_event(key, **fields))

    async def sync(self, courier: str, events: list[dict]):
        return await self.call("POST", "/api/v1/events", courier, json={"events": events})


@pytest.fixture
async def client(settings):
    app = create_app(settings)
    async with AsyncTestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def api(client) -> Api:
    return Api(client)


@pytest.fixture
async def db(settings):
    """The test's own connection to the app's database (the app runs in the client's event loop)."""
    from server.db.engine import Database

    database = Database(settings.db_url)
    yield database
    await database.dispose()


async def table_counts(db) -> dict[str, int]:
    """Row counts of every table: what 'nothing changed' means."""
    from sqlalchemy import func, select

    from server.db.models import Base

    out = {}
    async with db.read() as conn:
        for name, table in Base.metadata.tables.items():
            out[name] = await conn.scalar(select(func.count()).select_from(table))
    return out
