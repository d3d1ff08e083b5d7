"""`hoso demo`: a fresh, realistic data set on the embedded SQLite, then serve.

Everything goes through the real services (server-signed registrations, courier
devices enrolled and signing their events, signatures uploaded as PNG), so the
demo exercises exactly the code paths production uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import shutil
from datetime import timedelta
from typing import Any

from vietnam_provinces import Province, Ward

from shared.bundle import head_message
from shared.crypto import SigningKey
from shared.events import new_event_id, sign_event
from shared.labels import label_url
from shared.timeutil import to_wire, utcnow

from .auth import service as auth
from .auth.service import CurrentUser
from .custody import attachments
from .custody.service import ingest
from .db.engine import Database
from .db.migrate import upgrade
from .keys import load_keys
from .log import service as log_service
from .settings import Settings
from .shipments import service as shipments
from .shipments.schemas import Kind, Party, ShipmentCreate

DEMO_PASSWORD = "hoso-demo"  # demo mode only: printed on start, never a default elsewhere
PROVINCE = "Gia Lai"
# Communes of the former Pleiku area (names from vietnam-provinces, the July 2025 map);
# coordinates are approximate centres, good enough to order a demo route.
COMMUNES = {
    "Phường Pleiku": (13.9833, 108.0000),
    "Phường Hội Phú": (13.9650, 108.0150),
    "Phường Thống Nhất": (13.9950, 108.0050),
    "Phường Diên Hồng": (13.9780, 107.9950),
    "Phường An Phú": (13.9550, 108.0350),
    "Xã Biển Hồ": (14.0450, 108.0000),
    "Xã Gào": (13.9000, 107.9700),
    "Xã Chư Păh": (14.1000, 107.9600),
    "Xã Đak Đoa": (14.0100, 108.1000),
    "Xã Ia Grai": (13.9800, 107.8500),
}
STREETS = [
    "Trần Hưng Đạo",
    "Hùng Vương",
    "Lê Lợi",
    "Phạm Văn Đồng",
    "Nguyễn Tất Thành",
    "Quang Trung",
    "Hai Bà Trưng",
    "Lý Thái Tổ",
    "Phan Đình Phùng",
    "Cách Mạng Tháng Tám",
    "Trường Chinh",
    "Tôn Đức Thắng",
]
VILLAGES = ["Thôn 1", "Thôn 3", "Thôn 5", "Làng Ốp", "Làng Plei Ốp", "Thôn Đồng Tâm"]
FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
]
MIDDLE = ["Văn", "Thị", "Minh", "Đức", "Ngọc", "Thanh", "Hữu", "Thu", "Quốc", "Thị Thu"]
GIVEN = [
    "An",
    "Bình",
    "Cường",
    "Dung",
    "Giang",
    "Hà",
    "Hải",
    "Hạnh",
    "Hiếu",
    "Hoa",
    "Hùng",
    "Hương",
    "Khánh",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Nam",
    "Nga",
    "Phúc",
    "Quang",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trang",
    "Tuấn",
    "Vy",
    "Yến",
]
LOCAL_NAMES = ["Ksor H'Bia", "Rơ Mah Thuyên", "Siu Blơng", "Nay H'Linh", "Rơ Châm Điệp", "Kpă Hyơn"]
PROCEDURES = {
    "Tư pháp - Hộ tịch": [
        ("Đăng ký khai sinh", ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh (bản chính)"], 0),
        ("Cấp bản sao trích lục hộ tịch", ["Tờ khai cấp bản sao trích lục", "CCCD (bản sao)"], 8000),
        ("Đăng ký kết hôn", ["Tờ khai đăng ký kết hôn", "Giấy xác nhận tình trạng hôn nhân"], 0),
    ],
    "Đất đai": [
        (
            "Đăng ký biến động quyền sử dụng đất",
            ["Đơn đăng ký biến động", "Giấy chứng nhận (bản chính)", "Hợp đồng chuyển nhượng"],
            100000,
        ),
        (
            "Cấp đổi Giấy chứng nhận quyền sử dụng đất",
            ["Đơn đề nghị cấp đổi", "Giấy chứng nhận (bản chính)"],
            50000,
        ),
    ],
    "Xây dựng": [
        (
            "Cấp giấy phép xây dựng nhà ở riêng lẻ",
            ["Đơn đề nghị cấp giấy phép", "Bản vẽ thiết kế (2 bộ)", "Giấy chứng nhận QSDĐ (bản sao)"],
            75000,
        ),
    ],
    "Đăng ký kinh doanh": [
        ("Đăng ký thành lập hộ kinh doanh", ["Giấy đề nghị đăng ký hộ kinh doanh", "CCCD (bản sao)"], 100000),
    ],
    "Lao động - Việc làm": [
        (
            "Giải quyết hưởng trợ cấp thất nghiệp",
            ["Đề nghị hưởng trợ cấp", "Quyết định thôi việc (bản sao)", "Sổ bảo hiểm xã hội"],
            0,
        ),
    ],
    "Giao thông vận tải": [
        (
            "Cấp đổi giấy phép lái xe",
            ["Đơn đề nghị đổi GPLX", "Giấy khám sức khỏe", "GPLX (bản chính)"],
            135000,
        ),
    ],
}
USERS = [  # username, role, unit, full name
    ("buuta1", "courier", "BC-PLEIKU", "Nguyễn Văn Hùng"),
    ("buuta2", "courier", "BC-PLEIKU", "Rơ Mah Thuyên"),
    ("giaodich", "clerk", "BC-PLEIKU", "Lê Thị Hoa"),
    ("motcua", "clerk", "TTHCC-GL", "Phạm Minh Tuấn"),
    ("dieuphoi", "dispatcher", "BC-PLEIKU", "Võ Thị Mai"),
    ("quantri", "admin", None, "Quản trị hệ thống"),
    ("thanhtra", "auditor", None, "Đoàn thanh tra tỉnh"),
]


def _check_communes() -> None:
    province = next(p for p in Province.iter_all() if p.name == PROVINCE)
    known = {w.name for w in Ward.iter_all() if w.province_code == province.code}
    missing = set(COMMUNES) - known
    assert not missing, f"communes not in vietnam-provinces: {missing}"


def _signature_png(rng: random.Random, name: str) -> bytes:
    """A handwriting-like squiggle, so the console has something real to show."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (360, 140), "white")
    draw = ImageDraw.Draw(img)
    x, y = 20.0, 80.0
    points = [(x, y)]
    for _ in range(40):
        x += rng.uniform(4, 9)
        y = max(20.0, min(120.0, y + rng.uniform(-18, 18)))
        points.append((x, y))
    draw.line(points, fill=(20, 30, 120), width=3, joint="curve")
    draw.text((20, 118), name, fill=(90, 90, 90))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


class _Demo:
    def __init__(self, db: Database, settings: Settings, seed: int = 2026) -> None:
        self.db = db
        self.settings = settings
        self.keys = load_keys(settings.keys_dir)
        self.rng = random.Random(seed)
        self.users: dict[str, CurrentUser] = {}
        self.devices: dict[str, SigningKey] = {}
        self.sample: str | None = None

    def person(self) -> Party:
        rng = self.rng
        commune = rng.choice(list(COMMUNES))
        lat, lon = COMMUNES[commune]
        name = (
            rng.choice(LOCAL_NAMES)
            if rng.random() < 0.2
            else f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"
        )
        street = (
            f"{rng.randint(1, 250)} {rng.choice(STREETS)}"
            if commune.startswith("Phường")
            else rng.choice(VILLAGES)
        )
        return Party(
            name=name,
            phone=f"09{rng.randint(10_000_000, 99_999_999)}",
            address=street,
            commune=commune,
            province=f"Tỉnh {PROVINCE}",
            id_last4=f"{rng.randint(0, 9999):04d}",
            lat=round(lat + rng.uniform(-0.01, 0.01), 6),
            lon=round(lon + rng.uniform(-0.01, 0.01), 6),
        )

    def agency(self) -> Party:
        return Party(
            name="Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
            phone="02693822222",
            address="69 Hùng Vương",
            commune="Phường Pleiku",
            province=f"Tỉnh {PROVINCE}",
            lat=13.9792,
            lon=108.0046,
        )

    async def setup_people(self) -> None:
        await auth.add_unit(self.db, "BC-PLEIKU", "Bưu cục Pleiku - Bưu điện tỉnh Gia Lai", "post_office")
        await auth.add_unit(
            self.db, "TTHCC-GL", "Trung tâm Phục vụ hành chính công tỉnh Gia Lai", "one_stop_shop"
        )
        for username, role, unit, full_name in USERS:
            await auth.add_user(self.db, username, DEMO_PASSWORD, role, unit, full_name)
            _token, user = await auth.issue_token(self.db, username, DEMO_PASSWORD, 60)
            self.users[username] = user
            if role == "courier":
                key = SigningKey.generate()
                await auth.enroll_device(self.db, self.keys, user, key.public_key_b64, "demo phone")
                self.devices[username] = key

    async def sign(
        self, courier: str, code: str, type_: str, prev: str, when_offset_min: float, **fields: Any
    ) -> str:
        user = self.users[courier]
        now = utcnow() - timedelta(minutes=when_offset_min)
        lat, lon = fields.pop("near", (13.98, 108.0))
        ev = sign_event(
            self.devices[courier],
            id=new_event_id(int(now.timestamp() * 1000)),
            shipment=code,
            type=type_,
            occurred_at=to_wire(now),
            actor=user.actor,
            location={
                "lat": round(lat + self.rng.uniform(-0.0008, 0.0008), 6),
                "lon": round(lon + self.rng.uniform(-0.0008, 0.0008), 6),
                "accuracy_m": round(self.rng.uniform(4, 25), 1),
                "fix_at": to_wire(now - timedelta(seconds=4)),
            },
            prev=prev,
            **fields,
        )
        [result] = await ingest(self.db, user, [ev], utcnow())
        assert result.status == "accepted", (type_, result.reason)
        return ev.hash

    async def signature(self, name: str) -> str:
        png = _signature_png(self.rng, name)
        digest = hashlib.sha256(png).hexdigest()
        await attachments.store(
            self.db, self.settings.attachments_dir, digest, "image/png", png, self.users["buuta1"].id
        )
        return digest

    async def shipment(self, i: int, plan: str) -> None:
        rng = self.rng
        field = rng.choice(list(PROCEDURES))
        procedure, components, fee = rng.choice(PROCEDURES[field])
        kind: Kind = "result" if rng.random() < 0.3 else "submission"
        citizen = self.person()
        sender, recipient = (citizen, self.agency()) if kind == "submission" else (self.agency(), citizen)
        clerk = self.users["giaodich" if kind == "submission" else "motcua"]
        due = utcnow() + timedelta(days=rng.randint(-3, 10), hours=rng.randint(0, 8))
        start = rng.uniform(120, 60 * 24 * 2)  # minutes ago the courier picked it up
        registered_at = utcnow() - timedelta(minutes=start + rng.uniform(60, 600))
        created = await shipments.create(
            self.db,
            self.keys,
            self.settings.base_url,
            clerk,
            ShipmentCreate(
                kind=kind,
                due_at=due,
                dossier_ref=f"H21.52-{261100 + i:06d}-{rng.randint(1, 999):04d}",
                procedure=procedure,
                field=field,
                sender=sender,
                recipient=recipient,
                fee_vnd=fee if kind == "submission" else 0,
                components=components,
                dest_unit="TTHCC-GL" if kind == "submission" else None,
            ),
            registered_at=registered_at,
        )
        code, head = created.code, created.head
        if plan == "new":
            return
        courier = "buuta2" if i % 3 == 0 else "buuta1"
        # the post office's dispatcher sees what its unit registered or is sent to; a result the
        # one-stop shop registered for a citizen's door is dispatched by the admin here
        dispatcher = self.users["dieuphoi" if kind == "submission" else "quantri"]
        if plan == "cancelled":
            await shipments.cancel(self.db, self.keys, dispatcher, code, "Công dân rút hồ sơ")
            return
        await shipments.assign(self.db, self.keys, dispatcher, code, self.users[courier].id)
        if plan == "assigned":
            return
        giver = sender.name
        sig = await self.signature(giver)
        pickup_data = {"components": components, "fee_vnd": fee} if kind == "submission" else {}
        head = await self.sign(
            courier,
            code,
            "picked_up",
            head,
            start,
            near=(sender.lat, sender.lon),
            counterparty={
                "name": giver,
                "role": "citizen" if kind == "submission" else "clerk",
                **({"id_last4": citizen.id_last4} if kind == "submission" else {}),
            },
            attachments={"signature": sig, "photos": []},
            data=pickup_data,
        )
        failures = {
            "in_custody": rng.choice([0, 0, 1]),
            "delivered": rng.choice([0, 0, 0, 1]),
            "returned": 3,
        }[plan]
        for n in range(failures):
            head = await self.sign(
                courier,
                code,
                "delivery_failed",
                head,
                start - 60 * (n + 1),
                near=(recipient.lat, recipient.lon),
                counterparty=None,
                data={"reason": rng.choice(["not_home", "not_home", "wrong_address"])},
            )
        if plan == "in_custody":
            return
        end = start - 60 * (failures + 1) - rng.uniform(10, 50)
        if plan == "returned":
            sig = await self.signature("Lê Thị Hoa")
            await self.sign(
                courier,
                code,
                "returned",
                head,
                end,
                near=(13.9833, 108.0),
                counterparty={"name": "Lê Thị Hoa", "role": "clerk", "unit": "BC-PLEIKU"},
                attachments={"signature": sig, "photos": []},
                data={"note": "Hoàn sau 3 lần phát"},
            )
            return
        if kind == "submission":
            sig = await self.signature("Phạm Minh Tuấn")
            cp: dict[str, str | None] = {"name": "Phạm Minh Tuấn", "role": "clerk", "unit": "TTHCC-GL"}
            data: dict[str, Any] = {}
        else:
            sig = await self.signature(recipient.name)
            cp = {"name": recipient.name, "role": "citizen", "id_last4": recipient.id_last4}
            data = {"identity": {"method": "id_last4"}}
        if kind == "result":
            self.sample = code
        await self.sign(
            courier,
            code,
            "delivered",
            head,
            end,
            near=(recipient.lat, recipient.lon),
            counterparty=cp,
            attachments={"signature": sig, "photos": []},
            data=data,
        )


PLANS = (
    ["new"] * 6
    + ["assigned"] * 7
    + ["in_custody"] * 14
    + ["delivered"] * 16
    + ["returned"] * 3
    + ["cancelled"] * 4
)


async def seed(db: Database, settings: Settings) -> str | None:
    """Build the data set; return the code of a delivered result (to show its citizen page)."""
    _check_communes()
    demo = _Demo(db, settings)
    await demo.setup_people()
    plans = list(PLANS)
    demo.rng.shuffle(plans)
    for i, plan in enumerate(plans):
        await demo.shipment(i, plan)
    # the one-stop shop witnesses the log as it stands, so exports carry a cosignature
    head = await log_service.signed_head(db, demo.keys)
    witness = SigningKey.generate()
    await log_service.cosign(
        db,
        demo.users["motcua"].unit_id,
        "Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
        witness.public_key_b64,
        head["size"],
        head["root"],
        head["timestamp"],
        witness.sign_b64(head_message(head["size"], head["root"], head["timestamp"])),
    )
    return demo.sample


def prepare_demo(base: Settings) -> Settings:
    """Wipe and rebuild the demo data set under DATA_DIR/demo; return the settings to serve it."""
    demo_dir = base.data_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    settings = base.with_(data_dir=demo_dir, database_url="", demo=True)
    demo_dir.mkdir(parents=True)
    upgrade(settings.db_url)

    async def run() -> str | None:
        db = Database(settings.db_url)
        try:
            return await seed(db, settings)
        finally:
            await db.dispose()

    sample = asyncio.run(run())
    print(f"\nDemo data set ready: {len(PLANS)} shipments in {demo_dir.resolve()}")
    print(f"Sign in with any of these (password for all: {DEMO_PASSWORD}):")
    for username, role, unit, full_name in USERS:
        print(f"  {username:<10} {role:<11} {unit or '':<10} {full_name}")
    if sample:
        url = label_url(settings.base_url, sample, load_keys(settings.keys_dir).label)
        print(f"\nWhat a citizen sees after scanning a label: {url}")
    print(f"The API and its schema: {settings.base_url}/schema")
    print()
    return settings
