"""The phone's durable outbox: signed events and their attachments, in SQLite (WAL).

An event is written with its attachments in one transaction the moment the courier
finishes a flow, and it stays here until the server has answered for it: accepted and
duplicate events are marked acknowledged, rejected ones are kept with the reason so the
courier sees them. Nothing is ever deleted before an acknowledgement.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from shared.api import EventResult
from shared.events import CustodyEvent
from shared.timeutil import to_wire, utcnow

PENDING, ACKED, REJECTED = "pending", "acked", "rejected"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    shipment TEXT NOT NULL,
    hash TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    created_at TEXT NOT NULL,
    acked_at TEXT
);
CREATE INDEX IF NOT EXISTS events_state ON events (state, seq);
CREATE INDEX IF NOT EXISTS events_shipment ON events (shipment, seq);
CREATE TABLE IF NOT EXISTS attachments (
    sha256 TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- a dossier's pages photographed at the pickup (CUSTODY.md §4.1): each accepted page is kept
-- at once as a draft; "done" turns the drafts into a batch, uploaded once the pickup is acked
CREATE TABLE IF NOT EXISTS page_drafts (
    shipment TEXT NOT NULL,
    n INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    body BLOB NOT NULL,
    sharpness INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (shipment, n)
);
CREATE TABLE IF NOT EXISTS page_captures (  -- offered after a pickup, neither done nor skipped yet
    shipment TEXT PRIMARY KEY,
    opened_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS page_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    shipment TEXT NOT NULL,
    after_event TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    head TEXT,
    created_at TEXT NOT NULL,
    answered_at TEXT
);
CREATE TABLE IF NOT EXISTS page_batch_pages (
    batch_id INTEGER NOT NULL REFERENCES page_batches (id),
    n INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (batch_id, n)
);
"""
SENT = "sent"  # a page batch the server bound and signed (`digitised`)


@dataclass(frozen=True, slots=True)
class Attachment:
    sha256: str
    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class PageDraft:
    n: int  # 1-based, as people count pages
    sha256: str
    body: bytes
    sharpness: int


@dataclass(frozen=True, slots=True)
class PageBatch:
    id: int
    shipment: str
    after_event: str  # the pickup the pages were taken at: uploaded once the server acked it
    state: str  # pending | sent | rejected
    reason: str | None
    pages: int


@dataclass(frozen=True, slots=True)
class Rejected:
    id: str
    shipment: str
    type: str
    reason: str


_FLAGGED = "flagged"


class Flagged(msgspec.Struct):
    """An event the server accepted and flagged for the dispatcher."""

    id: str
    shipment: str
    type: str
    flags: list[str]
    step: str = ""  # the i18n key of what was done, in PRODUCT.md's words for its kind

    @property
    def step_key(self) -> str:
        return self.step or f"step.{self.type}"


def _step(event: dict[str, Any]) -> str:
    """A submission's `delivered` is the one-stop shop's clerk signing for the dossier; a
    result's is the citizen (or a proxy) receiving it at home."""
    counterparty = event.get("counterparty") or {}
    if event.get("type") == "delivered" and counterparty.get("role") == "clerk":
        return "step.delivered_to_shop"
    return f"step.{event.get('type')}"


class Outbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a record survives the battery dying
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction under the lock: all of it is kept, or none (on any error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def put(self, event: CustodyEvent, attachments: list[Attachment] = ()) -> None:  # type: ignore[assignment]
        """Keep a signed event and its attachments, atomically."""
        self.put_many([(event, list(attachments))])

    def put_many(self, items: list[tuple[CustodyEvent, list[Attachment]]]) -> None:
        """Keep several events (one handover of many envelopes) in one transaction: all or none."""
        now = to_wire(utcnow())
        with self._transaction():
            for event, attachments in items:
                for a in attachments:
                    self._db.execute(
                        "INSERT OR IGNORE INTO attachments (sha256, content_type, body) VALUES (?, ?, ?)",
                        (a.sha256, a.content_type, a.body),
                    )
                self._db.execute(
                    "INSERT INTO events (id, shipment, hash, body, created_at) VALUES (?, ?, ?, ?, ?)",
                    (event.id, event.shipment, event.hash, msgspec.json.encode(event), now),
                )

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """The oldest unanswered events, as JSON-ready dicts, in the order they were recorded."""
        rows = self._db.execute(
            "SELECT body FROM events WHERE state = ? ORDER BY seq LIMIT ?", (PENDING, limit)
        ).fetchall()
        return [msgspec.json.decode(r[0]) for r in rows]

    def pending_attachments(self) -> list[Attachment]:
        rows = self._db.execute(
            "SELECT sha256, content_type, body FROM attachments WHERE uploaded = 0 ORDER BY rowid"
        ).fetchall()
        return [Attachment(*r) for r in rows]

    def mark_uploaded(self, sha256: str) -> None:
        with self._lock:
            self._db.execute("UPDATE attachments SET uploaded = 1 WHERE sha256 = ?", (sha256,))

    def acknowledge(self, results: Sequence[EventResult]) -> None:
        """Apply the server's per-event answers to a sync batch."""
        now = to_wire(utcnow())
        with self._transaction():
            for r in results:
                if r.status in ("accepted", "duplicate"):
                    self._db.execute(
                        "UPDATE events SET state = ?, acked_at = ? WHERE id = ?", (ACKED, now, r.id)
                    )
                elif r.status == "rejected":
                    self._db.execute(
                        "UPDATE events SET state = ?, reason = ?, acked_at = ? WHERE id = ?",
                        (REJECTED, r.reason or "", now, r.id),
                    )
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_sync', ?)", (now,))

    def note_flags(self, events: Sequence[dict[str, Any]], results: Sequence[EventResult]) -> int:
        """Keep what the server flagged on accepted events (a wrong PIN, an ID that does not
        match), to show the courier; returns how many were flagged."""
        by_id = {e["id"]: e for e in events}
        new = [
            Flagged(
                r.id,
                str(by_id[r.id]["shipment"]),
                str(by_id[r.id]["type"]),
                list(r.flags),
                _step(by_id[r.id]),
            )
            for r in results
            if r.flags and r.id in by_id
        ]
        if new:
            kept = [f for f in self.flagged() if f.id not in {n.id for n in new}]
            self.remember(_FLAGGED, msgspec.json.encode([*kept, *new]))
        return len(new)

    def flagged(self) -> list[Flagged]:
        blob = self.recall(_FLAGGED)
        return msgspec.json.decode(blob, type=list[Flagged]) if blob else []

    def local_head(self, shipment: str) -> str | None:
        """The hash of this phone's latest unrejected event for a shipment (the next event's prev)."""
        row = self._db.execute(
            "SELECT hash FROM events WHERE shipment = ? AND state != ? ORDER BY seq DESC LIMIT 1",
            (shipment, REJECTED),
        ).fetchone()
        return row[0] if row else None

    def rejected(self) -> list[Rejected]:
        rows = self._db.execute(
            "SELECT id, shipment, body, reason FROM events WHERE state = ? ORDER BY seq", (REJECTED,)
        ).fetchall()
        return [Rejected(r[0], r[1], msgspec.json.decode(r[2])["type"], r[3]) for r in rows]

    def states(self, ids: Sequence[str]) -> dict[str, str]:
        """pending | acked | rejected of each of these events (those this outbox holds)."""
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(f"SELECT id, state FROM events WHERE id IN ({marks})", list(ids)).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def waiting(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM events WHERE state = ?", (PENDING,)).fetchone()[0]
        return count

    def waiting_for(self, shipment: str) -> int:
        """Events of this shipment still to be sent."""
        count: int = self._db.execute(
            "SELECT count(*) FROM events WHERE state = ? AND shipment = ?", (PENDING, shipment)
        ).fetchone()[0]
        return count

    def last_sync(self) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_sync'").fetchone()
        return row[0] if row else None

    def latest_event_id(self, shipment: str, type_: str) -> str | None:
        """The id of this phone's latest unrejected event of this type for a shipment."""
        rows = self._db.execute(
            "SELECT id, body FROM events WHERE shipment = ? AND state != ? ORDER BY seq DESC",
            (shipment, REJECTED),
        ).fetchall()
        for event_id, body in rows:
            if msgspec.json.decode(body).get("type") == type_:
                return str(event_id)
        return None

    def local_events(self, shipment: str) -> list[tuple[str, str | None, str]]:
        """(type, prev, hash) of this phone's unrejected events for a shipment, oldest first."""
        rows = self._db.execute(
            "SELECT body FROM events WHERE shipment = ? AND state != ? ORDER BY seq", (shipment, REJECTED)
        ).fetchall()
        out = []
        for (body,) in rows:
            e = msgspec.json.decode(body)
            out.append((e["type"], e["prev"], e["hash"]))
        return out

    def remember(self, key: str, value: bytes) -> None:
        """Keep a small blob (today's assignments) so the app opens offline after a restart."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value.decode("utf-8"))
            )

    def recall(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0].encode("utf-8") if row else None

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, count(*) FROM events GROUP BY state").fetchall())

    # pages photographed at the pickup ----------------------------------------------------------

    def add_page_draft(self, shipment: str, sha256: str, body: bytes, sharpness: int) -> int:
        """Keep an accepted page at once (the app may be closed between pages); its number."""
        with self._lock:
            row = self._db.execute(
                "SELECT coalesce(max(n), 0) + 1 FROM page_drafts WHERE shipment = ?", (shipment,)
            ).fetchone()
            n = int(row[0])
            self._db.execute(
                "INSERT INTO page_drafts (shipment, n, sha256, body, sharpness, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (shipment, n, sha256, body, sharpness, to_wire(utcnow())),
            )
        return n

    def page_drafts(self, shipment: str) -> list[PageDraft]:
        rows = self._db.execute(
            "SELECT n, sha256, body, sharpness FROM page_drafts WHERE shipment = ? ORDER BY n", (shipment,)
        ).fetchall()
        return [PageDraft(*r) for r in rows]

    def open_capture(self, shipment: str) -> None:
        """The pages of this dossier are being taken: Today offers to go on until done or skipped."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO page_captures (shipment, opened_at) VALUES (?, ?)",
                (shipment, to_wire(utcnow())),
            )

    def open_captures(self) -> list[tuple[str, int]]:
        """(shipment, pages kept) of the dossiers whose pages are neither done nor skipped."""
        rows = self._db.execute(
            "SELECT c.shipment, (SELECT count(*) FROM page_drafts d WHERE d.shipment = c.shipment) "
            "FROM page_captures c ORDER BY c.opened_at"
        ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    def drop_page_drafts(self, shipment: str) -> None:
        """Skipped: the counter scans the dossier."""
        with self._transaction():
            self._db.execute("DELETE FROM page_drafts WHERE shipment = ?", (shipment,))
            self._db.execute("DELETE FROM page_captures WHERE shipment = ?", (shipment,))

    def queue_pages(self, shipment: str, after_event: str) -> int:
        """The drafts become one batch to upload after `after_event` (the pickup), atomically."""
        now = to_wire(utcnow())
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO page_batches (shipment, after_event, created_at) VALUES (?, ?, ?)",
                (shipment, after_event, now),
            )
            batch = int(cur.lastrowid or 0)
            self._db.execute(
                "INSERT INTO page_batch_pages (batch_id, n, sha256, body) "
                "SELECT ?, n, sha256, body FROM page_drafts WHERE shipment = ? ORDER BY n",
                (batch, shipment),
            )
            self._db.execute("DELETE FROM page_drafts WHERE shipment = ?", (shipment,))
            self._db.execute("DELETE FROM page_captures WHERE shipment = ?", (shipment,))
        return batch

    def page_batches(self, state: str | None = None) -> list[PageBatch]:
        query = (
            "SELECT b.id, b.shipment, b.after_event, b.state, b.reason, "
            "(SELECT count(*) FROM page_batch_pages p WHERE p.batch_id = b.id) FROM page_batches b"
        )
        args: tuple[str, ...] = ()
        if state is not None:
            query += " WHERE b.state = ?"
            args = (state,)
        return [PageBatch(*r) for r in self._db.execute(query + " ORDER BY b.id", args).fetchall()]

    def batch_pages(self, batch_id: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT body FROM page_batch_pages WHERE batch_id = ? ORDER BY n", (batch_id,)
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def pages_sent(self, batch_id: int, event: CustodyEvent) -> None:
        """The server bound the batch and signed `digitised`: keep that event as acknowledged,
        so this phone's next event for the dossier links to it (its `prev`)."""
        now = to_wire(utcnow())
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO events (id, shipment, hash, body, state, created_at, acked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event.id, event.shipment, event.hash, msgspec.json.encode(event), ACKED, now, now),
            )
            self._db.execute(
                "UPDATE page_batches SET state = ?, head = ?, answered_at = ? WHERE id = ?",
                (SENT, event.hash, now, batch_id),
            )

    def pages_refused(self, batch_id: int, reason: str) -> None:
        """The server said no (handed on: the counter scans it instead; the pickup was
        rejected): kept with its reason, never retried."""
        with self._lock:
            self._db.execute(
                "UPDATE page_batches SET state = ?, reason = ?, answered_at = ? WHERE id = ?",
                (REJECTED, reason, to_wire(utcnow()), batch_id),
            )
