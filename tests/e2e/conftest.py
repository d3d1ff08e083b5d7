from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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


@contextlib.contextmanager
def courier_app(server_base: str, data: Path, log_name: str) -> Iterator[str]:
    """The courier app served for the browser, as `hoso app --no-browser` runs it (no CDN),
    against `server_base`, keeping its data in `data` and its own log in ARTIFACTS; yields
    its URL once it answers."""
    from bench._harness import free_port

    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    argv = ["--server", server_base, "--port", str(port), "--no-browser", "--data-dir", str(data)]
    with (ARTIFACTS / log_name).open("w") as log:  # the app's own log, for a failure's post-mortem
        proc = subprocess.Popen(
            [sys.executable, "-m", "courier_app.main", *argv],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "FLET_WEB_NO_CDN": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url).status_code == 200:
                        break
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)
