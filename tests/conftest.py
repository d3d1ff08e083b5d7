"""Test fixtures: a fresh database per test, on SQLite and (when configured) PostgreSQL.

`HOSO_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test` adds the
PostgreSQL runs; `HOSO_TEST_STRICT=1` (set by .ci/run) turns a missing backend or
browser into a failure instead of a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import pytest

from server.settings import Settings

PG_URL = os.environ.get("HOSO_TEST_POSTGRES_URL", "")
STRICT = os.environ.get("HOSO_TEST_STRICT") == "1"
BACKENDS = ["sqlite", "postgres"]
PASSWORD = "test-password-1"
UNITS = {
    "BC-PLEIKU": ("Bưu cục Pleiku", "post_office"),
    "TTHCC-GL": ("Trung tâm Phục vụ hành chính công tỉnh Gia Lai", "one_stop_shop"),
}
USERS = {
    "courier1": ("courier", "BC-PLEIKU", "Nguyễn Văn Hùng"),
    "courier2": ("courier", "BC-PLEIKU", "Trần Thị Lan"),
    "clerk": ("clerk", "BC-PLEIKU", "Lê Thị Hoa"),
    "shopclerk": ("clerk", "TTHCC-GL", "Phạm Minh Tuấn"),
    "dispatcher": ("dispatcher", "BC-PLEIKU", "Võ Thị Mai"),
    "shopdispatcher": ("dispatcher", "TTHCC-GL", "Đỗ Văn Nam"),
    "admin": ("admin", None, "Quản trị"),
    "auditor": ("auditor", None, "Thanh tra"),
}


def pytest_collection_modifyitems(config, items):
    if STRICT and not PG_URL:
        raise pytest.UsageError("HOSO_TEST_STRICT=1 but HOSO_TEST_POSTGRES_URL is not set")


async def _seed(url: str) -> None:
    from server.auth import service
    from server.db.engine import Database

    db = Database(url)
    try:
        for code, (name, kind) in UNITS.items():
            await service.add_unit(db, code, name, kind)
        for username, (role, unit, full_name) in USERS.items():
            await service.add_user(db, username, PASSWORD, role, unit, full_name)
    finally:
        await db.dispose()


def _pg_admin():
    import psycopg

    plain = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    return psycopg.connect(plain, autocommit=True)


def _pg_url_for(dbname: str) -> str:
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def templates(tmp_path_factory):
    from server.db.migrate import upgrade

    made: dict[str, str] = {}
    sqlite_file = tmp_path_factory.mktemp("tpl") / "template.db"
    url = f"sqlite+aiosqlite:///{sqlite_file}"
    upgrade(url)
    asyncio.run(_seed(url))
    made["sqlite"] = str(sqlite_file)
    if PG_URL:
        name = f"hoso_tpl_{os.getpid()}"
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        upgrade(_pg_url_for(name))
        asyncio.run(_seed(_pg_url_for(name)))
        made["postgres"] = name
    yield made
    if PG_URL:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{made["postgres"]}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """sqlite | postgres; a module may add "sqlite-core" (ingest through SQLAlchemy's
    connection instead of the plain sqlite3 writer: HOSO_SQLITE_WRITER=core)."""
    return request.param


@pytest.fixture
def db_url(backend, templates, tmp_path):
    if backend.startswith("sqlite"):
        target = tmp_path / "hoso.db"
        shutil.copyfile(templates["sqlite"], target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL run needs HOSO_TEST_POSTGRES_URL")
    name = f"hoso_t_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgres"]}"')
    yield _pg_url_for(name)
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path: Path, db_url: str, backend: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        public_base_url="http://testserver",
        sqlite_writer="core" if backend == "sqlite-core" else "fast",
        # no outbox worker inside the test app: tests/api/test_outbox.py runs its own (and one
        # test there the app's, as `hoso serve` does by default)
        outbox_worker=False,
    )


# ingest's both SQLite writers (and PostgreSQL): for the modules that sync events
BOTH_SQLITE_WRITERS = pytest.mark.parametrize("backend", ["sqlite", "sqlite-core", "postgres"], indirect=True)
