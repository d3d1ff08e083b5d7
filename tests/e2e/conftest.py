from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip without Debian's chromium; fail under HOSO_TEST_STRICT=1 (CI)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("HOSO_TEST_STRICT") == "1":
            pytest.fail("Debian's chromium is not installed (apt-get install -y chromium)")
        pytest.skip("browser tests need Debian's chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop while it lives
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
