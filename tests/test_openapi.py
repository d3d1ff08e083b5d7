"""The OpenAPI document tells the truth: schemathesis against a real `hoso serve`.

A demo data set (`hoso demo --no-serve`: units, one account per role, shipments in every
state) is served on 127.0.0.1; for anonymous callers and for each role, requests generated
from /schema/openapi.json must get no server error and an answer the document describes:
a documented status, a documented media type, a body its schema accepts.

Bounded for CI: a few examples per operation and caller, derandomized (the same requests on
every run), no deadline, no example database. The document holds only the JSON API: the
console (with its SSE stream /console/live) and the citizen pages are HTML and
`include_in_schema=False`, so they are not generated from it (docs/API.md).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from bench import _harness as harness
from server.demo import DEMO_PASSWORD
from server.demo import USERS as DEMO_USERS

from .conftest import PASSWORD, PG_URL, USERS, _pg_admin, _pg_url_for
from .test_cli import ROOT

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("HOSO_OPENAPI_EXAMPLES", "8"))  # per operation and caller
ROLES = ("courier", "clerk", "dispatcher", "auditor", "admin")


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """`hoso serve` on a free port with this environment; yields the base URL once it answers."""
    with harness.serving(env) as (base,):
        yield base


@pytest.fixture(params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path, templates: dict[str, str]
) -> Iterator[tuple[str, dict[str, tuple[str, str]]]]:
    """A served, seeded database and the account (username, password) of each role.

    SQLite: the demo data set (shipments in every state, so labels and documents answer 200).
    PostgreSQL: the suite's seeded template (units and accounts), where text rules differ.
    """
    env = {**os.environ, "HOSO_DATA_DIR": str(tmp_path)}
    env.pop("HOSO_DATABASE_URL", None)
    if request.param == "sqlite":
        subprocess.run(
            [sys.executable, "-m", "server.cli", "demo", "--no-serve"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        accounts = {role: (name, DEMO_PASSWORD) for name, role, _unit, _full in reversed(DEMO_USERS)}
        with serving({**env, "HOSO_DATA_DIR": str(tmp_path / "demo")}) as base:
            yield base, accounts
        return
    if not PG_URL:
        pytest.skip("PostgreSQL run needs HOSO_TEST_POSTGRES_URL")
    name = f"hoso_oa_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        template = templates["postgres"]
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    accounts = {role: (username, PASSWORD) for username, (role, _unit, _full) in reversed(USERS.items())}
    try:
        with serving({**env, "HOSO_DATABASE_URL": _pg_url_for(name)}) as base:
            yield base, accounts
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tokens(base: str, accounts: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A token for each role, signed in through the API itself."""
    out: dict[str, str] = {}
    for role in ROLES:
        username, password = accounts[role]
        r = httpx.post(f"{base}/api/v1/auth/token", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        out[role] = r.json()["access_token"]
    return out


def fuzz(schema: Any, base: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Run every operation's generated cases; return how many were sent and the failures, one
    example request for each operation, status and kind of failure."""
    sent = 0
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal sent
            sent += 1
            response = case.call(base_url=base, headers=headers, timeout=60)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    key = f"{case.operation.label} → {response.status_code}: {failure.title}"
                    failures.setdefault(key, f"    {case.as_curl_command()}\n    {failure.message[:300]}")

        run()
    return sent, failures


def test_the_openapi_document_tells_the_truth(server: tuple[str, dict[str, tuple[str, str]]]) -> None:
    started = time.monotonic()
    base, accounts = server
    schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json")
    callers: dict[str, dict[str, str]] = {"anonymous": {}}
    callers.update({role: {"Authorization": f"Bearer {t}"} for role, t in tokens(base, accounts).items()})
    report: list[str] = []
    total = 0
    for caller, headers in callers.items():
        sent, failures = fuzz(schema, base, headers)
        total += sent
        report += [f"[{caller}] {key}\n{example}" for key, example in sorted(failures.items())]
    assert total > 100, f"only {total} requests were generated"
    assert not report, f"{len(report)} kinds of failure in {total} requests:\n" + "\n".join(report)
    assert time.monotonic() - started < 300, "the schemathesis run is meant to stay within a few minutes"
