"""The browser build fetches nothing from outside the machine it is served from.

Flet's `no_cdn` makes the page load CanvasKit and the fallback fonts from the app's own
server, but the Flutter client in `flet-web` still names one absolute URL: the Rive
runtime (`cdn.jsdelivr.net/npm/@rive-app/flutter-native-wasm@…/`), which the client
loads at start-up whether or not a Rive animation is ever shown (this app shows none).
The web server looks up a file in the app's assets folder before the packaged client,
so `local_assets()` builds an assets folder for the browser: the app's own assets, and
the client's two entry points (`main.dart.js` for CanvasKit, `main.dart.wasm` for
skwasm) with that URL replaced by a same-length path on the app's own server (where
nothing answers: the Rive runtime is simply not loaded). Same length, because the wasm
module's string data has fixed offsets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

RIVE_CDN = b"https://cdn.jsdelivr.net/npm/@rive-app/flutter-native-wasm@44.0.0/"
ENTRY_POINTS = ("main.dart.js", "main.dart.wasm")


def _local_path(length: int) -> bytes:
    """A path on the app's own server, exactly `length` bytes long."""
    stem = b"assets/no-rive/"
    return stem + b"x" * (length - len(stem) - 1) + b"/"


def patch(blob: bytes) -> bytes:
    """`blob` without the absolute CDN URL (unchanged in length)."""
    local = _local_path(len(RIVE_CDN))
    assert len(local) == len(RIVE_CDN)
    return blob.replace(RIVE_CDN, local)


def client_dir() -> Path:
    import flet_web

    return Path(flet_web.get_package_web_dir())


def local_assets(assets: Path, into: Path, web: Path | None = None) -> Path:
    """`into`, holding `assets` and the client's entry points without CDN URLs; rebuilt
    only when the installed client changes (its files' sizes and times are the key)."""
    web = web or client_dir()
    sources = [web / name for name in ENTRY_POINTS]
    key = hashlib.sha256(
        "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sources if p.exists()).encode()
    ).hexdigest()
    marker = into / ".client"
    into.mkdir(parents=True, exist_ok=True)
    if assets.is_dir():
        for item in assets.iterdir():
            target = into / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(item, target)
    if marker.exists() and marker.read_text() == key:
        return into
    for src in sources:
        if src.exists():
            tmp = into / (src.name + ".tmp")
            tmp.write_bytes(patch(src.read_bytes()))
            os.replace(tmp, into / src.name)
    marker.write_text(key)
    return into
