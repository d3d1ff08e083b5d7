"""The schema. Custody events, rejected events and attachments are append-only."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}
    if TYPE_CHECKING:
        # Every model here is declared with __tablename__, so its __table__ is a Table
        # (SQLAlchemy types it as the wider FromClause, which insert()/update() refuse).
        __table__: ClassVar[Table]


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # post_office | one_stop_shop
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class ApiToken(Base):
    __tablename__ = "api_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class DeviceEnrolment(Base):
    """The signed enrolment record of a device key (shared/enrolment.py), also a log leaf."""

    __tablename__ = "device_enrolments"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True, autoincrement=False)
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    log_index: Mapped[int] = mapped_column(BigInteger, unique=True)  # leaf index in the Merkle log
    body: Mapped[str] = mapped_column(Text)  # the record exactly as signed
    created_at: Mapped[datetime]


class Shipment(Base):
    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(13), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    dossier_ref: Mapped[str] = mapped_column(String(100), default="")
    procedure: Mapped[str] = mapped_column(String(300), default="")
    field: Mapped[str] = mapped_column(String(200), default="")
    sender: Mapped[dict[str, Any]]
    recipient: Mapped[dict[str, Any]]
    due_at: Mapped[datetime]
    fee_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    components: Mapped[list[Any]]
    parent_code: Mapped[str | None] = mapped_column(String(13))
    # how the dossier came in: "post" (a courier's pickup) or "counter" (handed in at a
    # post-office counter or the one-stop shop's desk; migration 0011_counter)
    channel: Mapped[str] = mapped_column(String(10), default="post", server_default="post")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    dest_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    pin_hash: Mapped[str] = mapped_column(String(200))
    assigned_courier_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    head: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=0)  # accepted events in the chain
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    custodian_role: Mapped[str | None] = mapped_column(String(20))
    custodian_name: Mapped[str | None] = mapped_column(String(200))
    custodian_user_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_shipments_state_due", "state", "due_at"),
        Index("ix_shipments_courier_state", "assigned_courier_id", "state"),
        Index("ix_shipments_unit", "unit_id"),
        Index("ix_shipments_dest_unit", "dest_unit_id"),
        Index("ix_shipments_field", "field"),
        Index("ix_shipments_parent", "parent_code"),
        # the console's board: open shipments, soonest due first (a small part of the table)
        Index(
            "ix_shipments_open_due",
            "due_at",
            "id",
            postgresql_where=text("state IN ('registered', 'in_custody')"),
            sqlite_where=text("state IN ('registered', 'in_custody')"),
        ),
        # reports select a window of registration dates (and its first and last id)
        Index("ix_shipments_created", "created_at", "id"),
    )


class CustodyEvent(Base):
    """An accepted event: the body exactly as signed, plus what the server knows."""

    __tablename__ = "custody_events"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1-based position in the shipment's chain
    type: Mapped[str] = mapped_column(String(20))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    prev: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(40))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    occurred_at: Mapped[datetime]  # the device's clock
    fix_at: Mapped[datetime | None]  # the GPS fix's clock
    received_at: Mapped[datetime]  # the server's clock
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    body: Mapped[str] = mapped_column(Text)
    # SQL NULL when there is none (not JSON 'null'): the flagged index holds only flagged rows
    flags: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    log_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)  # leaf index in the Merkle log

    __table_args__ = (
        UniqueConstraint("shipment_id", "seq", name="uq_custody_events_chain"),
        # the board's list of recent flagged handovers (migration 0006_door)
        Index(
            "ix_custody_events_flagged",
            "received_at",
            postgresql_where=text("flags IS NOT NULL"),
            sqlite_where=text("flags IS NOT NULL"),
        ),
        # a courier's last known position and today's work (the console's couriers page)
        Index("ix_custody_events_actor_time", "actor", "received_at"),
        # reports: pickup and delivery times (index-only), failure reasons and ratings
        Index(
            "ix_custody_events_legs",
            "shipment_id",
            "type",
            "occurred_at",
            postgresql_where=text("type IN ('picked_up', 'delivered')"),
            sqlite_where=text("type IN ('picked_up', 'delivered')"),
        ),
        Index(
            "ix_custody_events_outcomes",
            "shipment_id",
            postgresql_where=text("type IN ('delivery_failed', 'confirmed')"),
            sqlite_where=text("type IN ('delivery_failed', 'confirmed')"),
        ),
    )


class RejectedEvent(Base):
    """An event the server refused, kept with its reason (never silently dropped)."""

    __tablename__ = "rejected_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    hash: Mapped[str] = mapped_column(String(64))
    shipment_code: Mapped[str] = mapped_column(String(13), index=True)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"))
    type: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(40))
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("event_id", "hash", name="uq_rejected_events_id_hash"),)


class Attachment(Base):
    __tablename__ = "attachments"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class LogNode(Base):
    """A perfect, aligned subtree of the Merkle log: 2**level leaves from idx * 2**level.

    Level 0 holds the leaf hashes. Keeping every such node (about two per leaf) lets any
    inclusion or consistency proof be read in O(log n) rows, never rebuilding the tree.
    """

    __tablename__ = "log_nodes"
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class TreeHead(Base):
    """A signed tree head the server has published."""

    __tablename__ = "tree_heads"
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[int] = mapped_column(BigInteger)  # ms since the epoch
    sig: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(64))  # the log public key that signed it


class Witness(Base):
    """A one-stop shop's key that co-signs tree heads."""

    __tablename__ = "witnesses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    name: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class Cosignature(Base):
    __tablename__ = "cosignatures"
    tree_size: Mapped[int] = mapped_column(ForeignKey("tree_heads.size"), primary_key=True)
    witness_id: Mapped[int] = mapped_column(ForeignKey("witnesses.id"), primary_key=True)
    sig: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]


class AttemptCounter(Base):
    """Tries at a guessable secret (a PIN, a password) in the current window, per key
    (`pin:code:…`, `pin:client:…`, `login:account:…`, `login:client:…`). A try is counted
    before the secret is checked, so parallel guesses cannot all slip under the limit."""

    __tablename__ = "attempt_counters"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime]

    __table_args__ = (Index("ix_attempt_counters_window", "window_start"),)


class Handover(Base):
    """A batch a clerk received from a courier and signed for on screen (the console).

    The custody events themselves are the courier's to sign; this row only carries the
    clerk's signature (an attachment) to the courier's phone, which references it in them.
    """

    __tablename__ = "handovers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    clerk_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    courier_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    codes: Mapped[list[Any]]
    signature: Mapped[str] = mapped_column(String(64))  # sha256 of the PNG attachment
    strokes: Mapped[str | None] = mapped_column(String(64))  # sha256 of the strokes JSON
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_handovers_courier", "courier_id", "id"),)


units = Unit.__table__
users = User.__table__
api_tokens = ApiToken.__table__
devices = Device.__table__
device_enrolments = DeviceEnrolment.__table__
shipments = Shipment.__table__
custody_events = CustodyEvent.__table__
rejected_events = RejectedEvent.__table__
attachments = Attachment.__table__
log_nodes = LogNode.__table__
tree_heads = TreeHead.__table__
witnesses = Witness.__table__
cosignatures = Cosignature.__table__
attempt_counters = AttemptCounter.__table__
handovers = Handover.__table__


# --- money: fees collected on behalf (thu hộ) and their remittance (issue 15) ---


class Remittance(Base):
    """A cashier's signed record that a courier handed over cash (docs/API.md "Money").

    Append-only: never updated or deleted. `body` is the canonical record (RFC 8785) exactly
    as hashed; `hash` is its SHA-256. The courier's on-screen signature is an attachment.
    """

    __tablename__ = "remittances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(36), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    cashier_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    courier_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expected_vnd: Mapped[int] = mapped_column(BigInteger)  # the fees the shipments recorded
    amount_vnd: Mapped[int] = mapped_column(BigInteger)  # the cash counted
    reason: Mapped[str] = mapped_column(Text, default="")  # why amount differs from expected
    signature: Mapped[str] = mapped_column(String(64))  # sha256 of the courier's PNG
    strokes: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_remittances_courier_time", "courier_id", "created_at"),)


class RemittanceItem(Base):
    """One shipment's fee in a remittance. The primary key is the shipment: a fee is remitted
    once, and of two parallel remittances of it the database lets exactly one commit."""

    __tablename__ = "remittance_items"
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id"), primary_key=True, autoincrement=False
    )
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittances.id"), index=True)
    fee_vnd: Mapped[int] = mapped_column(BigInteger)


remittances = Remittance.__table__
remittance_items = RemittanceItem.__table__
# --- one-stop shop: procedure catalogue, dossier register, scoring rules (issue 15) ---


class Procedure(Base):
    """One administrative procedure in a unit's catalogue (imported or edited in the console)."""

    __tablename__ = "procedures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(500))
    field: Mapped[str] = mapped_column(String(200), default="")
    by_post: Mapped[bool] = mapped_column(Boolean, default=True)
    components: Mapped[list[Any]]
    fee_vnd: Mapped[int] = mapped_column(BigInteger, default=0)  # đồng; never a float
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("unit_id", "code", name="uq_procedures_unit_code"),)


class RegisterImport(Base):
    """One imported dossier register of a unit for a period [period_start, period_end] (days)."""

    __tablename__ = "register_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    filename: Mapped[str] = mapped_column(String(200), default="")
    rows: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    imported_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("unit_id", "period_start", "period_end", name="uq_register_imports_period"),
    )


class RegisterRow(Base):
    """One dossier of an imported register, as the one-stop shop's own system lists it."""

    __tablename__ = "register_rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("register_imports.id"))
    line: Mapped[int] = mapped_column(Integer)  # its line in the imported file
    dossier_code: Mapped[str] = mapped_column(String(100))
    procedure_code: Mapped[str] = mapped_column(String(100))
    field: Mapped[str] = mapped_column(String(200), default="")
    received_on: Mapped[date] = mapped_column(Date)
    received_channel: Mapped[str] = mapped_column(String(10))  # counter | online | post
    returned_on: Mapped[date | None] = mapped_column(Date)
    returned_channel: Mapped[str | None] = mapped_column(String(10))

    __table_args__ = (Index("ix_register_rows_import", "import_id", "dossier_code"),)


class UnitProvince(Base):
    """Which province's scoring rules a unit is judged by."""

    __tablename__ = "unit_provinces"
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True, autoincrement=False)
    province: Mapped[str] = mapped_column(String(100))


class ScoringRule(Base):
    """A province's rule for one criterion (a, b, c): a share at or above `threshold_bp`
    (basis points: 1/100 of a per cent) earns `points_x100` / 100 points. The rule in force
    for a period is the set with the latest `effective_from` on or before the period's end."""

    __tablename__ = "scoring_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    province: Mapped[str] = mapped_column(String(100))
    effective_from: Mapped[date] = mapped_column(Date)
    criterion: Mapped[str] = mapped_column(String(1))
    threshold_bp: Mapped[int] = mapped_column(Integer)
    points_x100: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_scoring_rules_province", "province", "effective_from"),)


# the register's rows are matched to shipments by dossier code: results by the unit that
# registered them, submissions by the unit they are addressed to
Index("ix_shipments_unit_dossier", Shipment.__table__.c.unit_id, Shipment.__table__.c.dossier_ref)
Index("ix_shipments_dest_dossier", Shipment.__table__.c.dest_unit_id, Shipment.__table__.c.dossier_ref)

procedures = Procedure.__table__
register_imports = RegisterImport.__table__
register_rows = RegisterRow.__table__
unit_provinces = UnitProvince.__table__
scoring_rules = ScoringRule.__table__


# --- intake: API keys of a one-stop shop's software, dossiers registered by it (issue 17) ---


class ApiKey(Base):
    """A key a unit's software registers shipments with (docs/API.md "Intake"). Only the
    SHA-256 of the whole key is kept; `prefix` (public, part of the key) finds the row. The key
    acts through its own account (`user_id`, a clerk of the unit with no usable password), so
    the custody events it causes name it."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class IntakeRecord(Base):
    """One dossier code a unit registered by API or from a file: the idempotency record.
    The unique (unit, kind, dossier code) makes a second registration of the same dossier
    find the first; `fingerprint` (SHA-256 of the canonical request) tells a repeat from a
    different request. `pin_sealed` is the new PIN sealed to the server's X25519 key, so a
    repeat within a day answers the same body; it is emptied after that."""

    __tablename__ = "intake_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(20))
    dossier_code: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"))
    source: Mapped[str] = mapped_column(String(10))  # api | file
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    pin_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("unit_id", "kind", "dossier_code", name="uq_intake_records_dossier"),
        Index(
            "ix_intake_records_sealed",
            "created_at",
            postgresql_where=text("pin_sealed IS NOT NULL"),
            sqlite_where=text("pin_sealed IS NOT NULL"),
        ),
    )


api_keys = ApiKey.__table__
intake_records = IntakeRecord.__table__


# --- outbox: messages out (SMS, Zalo ZNS, webhooks), written with their cause (issue 17) ---


class OutboxMessage(Base):
    """One message to send, written in the same transaction as the change that causes it
    (docs/NOTIFICATIONS.md). `channel` is `citizen` until the worker picks SMS or Zalo for
    it (then `sms` / `zns`), or `webhook`. A PIN travels sealed to the server's own seal key
    in `sealed` and is erased once the message is sent or given up."""

    __tablename__ = "outbox_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"))
    unit_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))
    topic: Mapped[str] = mapped_column(String(40))
    subscription_id: Mapped[int | None] = mapped_column(Integer)
    destination: Mapped[str] = mapped_column(String(300), default="")  # a masked phone, a URL
    payload: Mapped[dict[str, Any]]
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(10))  # pending | sent | dead | skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "ix_outbox_messages_due",
            "next_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_outbox_messages_shipment", "shipment_id"),
        Index(
            "ix_outbox_messages_dead",
            "id",
            postgresql_where=text("state = 'dead'"),
            sqlite_where=text("state = 'dead'"),
        ),
    )


class WebhookSubscription(Base):
    """A unit's endpoint for custody events (Standard Webhooks). While a rotation is under
    way the previous secret signs too, until `previous_until`."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    url: Mapped[str] = mapped_column(String(500))
    event_types: Mapped[list[Any]]
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_until: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_webhook_subscriptions_unit", "unit_id"),)


class UnitNotify(Base):
    """How a unit reaches citizens: `sms`, `zalo` (ZNS, SMS when the topic has no template)
    or `off`; its ZNS template id per message kind; its SMS brand name."""

    __tablename__ = "unit_notify"
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(String(10))
    zns_templates: Mapped[dict[str, Any]]
    sms_sender: Mapped[str] = mapped_column(String(11), default="")
    updated_at: Mapped[datetime]


outbox_messages = OutboxMessage.__table__
webhook_subscriptions = WebhookSubscription.__table__
unit_notify = UnitNotify.__table__


class LogHead(Base):
    """The Merkle log's size and right edge, in one row (id 1): what an append reads, and
    the row whose lock gives appends one total order (server/log/repository.py). `edge`:
    the hashes of merkle.right_edge(size), 32 bytes each, highest level first."""

    __tablename__ = "log_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    edge: Mapped[bytes] = mapped_column(LargeBinary)


log_head = LogHead.__table__
