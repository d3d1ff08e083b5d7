"""The browser build's copy of Flet's web client names nothing outside the machine."""

from __future__ import annotations

from pathlib import Path

from courier_app.webclient import ENTRY_POINTS, RIVE_CDN, local_assets, patch


def test_the_cdn_url_is_replaced_in_place_and_the_copy_is_kept(tmp_path):
    web, assets = tmp_path / "web", tmp_path / "assets"
    web.mkdir()
    assets.mkdir()
    (assets / "icon.png").write_bytes(b"icon")
    blob = b"\x00\x01before" + RIVE_CDN + b"wasm/rive_native.js\x00after"
    for name in ENTRY_POINTS:
        (web / name).write_bytes(blob)
    out = local_assets(assets, tmp_path / "out", web)
    for name in ENTRY_POINTS:
        patched = (out / name).read_bytes()
        assert len(patched) == len(blob) and b"jsdelivr" not in patched and b"https://" not in patched
        assert patched.startswith(b"\x00\x01before") and patched.endswith(b"rive_native.js\x00after")
    assert (out / "icon.png").read_bytes() == b"icon"
    assert patch(b"nothing to do") == b"nothing to do"
    # the installed client unchanged: the copy is not rewritten
    (out / "main.dart.js").write_bytes(b"kept")
    local_assets(assets, tmp_path / "out", web)
    assert (out / "main.dart.js").read_bytes() == b"kept"


def test_a_relative_data_folder_still_serves_the_local_copy(tmp_path, monkeypatch):
    """`./scripts/demo` names its data folder relative to the project; Flet resolves a
    relative assets_dir against courier_app/, where it does not exist, and then serves
    its own client, which fetches from a CDN."""
    import flet as ft

    from courier_app import main

    seen: dict = {}
    monkeypatch.setattr(ft, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.chdir(tmp_path)
    main.run(data_dir=Path("var/demo/courier-app"), open_browser=False)
    assets = Path(seen["assets_dir"])
    assert assets.is_absolute() and assets.is_dir()
    assert assets == tmp_path / "var/demo/courier-app/web-assets"
