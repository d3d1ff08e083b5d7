"""The phone's camera preview and its GPS behind the flows' Locator port (flet-camera,
flet-geolocator). In the browser build they use the browser's camera and geolocation."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime

import flet as ft
import flet_camera as fc
import flet_geolocator as fg
from PIL import Image, ImageOps

from shared.crypto import SigningKey, b64url, b64url_decode

from ..ports import Fix

log = logging.getLogger(__name__)
GPS_TIMEOUT_S = 12.0


class GeoLocator:
    def __init__(self) -> None:
        self.service = fg.Geolocator()  # registers itself with the current page

    async def locate(self) -> Fix | None:
        try:
            p = await asyncio.wait_for(self.service.get_current_position(), GPS_TIMEOUT_S)
        except Exception as exc:  # no permission, no service, timeout: the event says "no fix"
            log.info("no GPS fix: %s", exc)
            return None
        if p is None or p.latitude is None or p.longitude is None:
            return None
        at = p.timestamp if isinstance(p.timestamp, datetime) else datetime.now(UTC)
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        return Fix(float(p.latitude), float(p.longitude), float(p.accuracy) if p.accuracy else None, at)


def unmirror(jpeg: bytes) -> bytes:
    """The JPEG flipped left to right (re-encoded at quality 92)."""
    with Image.open(io.BytesIO(jpeg)) as im:
        out = io.BytesIO()
        ImageOps.mirror(im.convert("RGB")).save(out, format="JPEG", quality=92)
        return out.getvalue()


class CameraPanel(ft.Container):
    """A live preview with a flashlight toggle; `take_picture()` gives one JPEG frame.

    In the browser build, Flutter's camera plugin mirrors both the preview (a CSS
    `scaleX(-1)` on its video) and every picture (drawn flipped on a canvas) for any camera
    whose track does not say it faces away (`facingMode` other than "environment": a
    laptop's webcam, a USB camera, Chromium's fake device). So there the panel flips the
    preview back, and `take_picture(as_seen=True)` flips the photo back: what is stored is
    what stood in front of the lens. The phone's native plugin mirrors nothing."""

    def __init__(self, width: int = 380, height: int = 285, on_error: object = None) -> None:
        self.camera = fc.Camera(preview_enabled=True, expand=True)
        self.ready = False
        self.torch = False
        self.mirrored = False  # the plugin flips this camera's pictures (web, not a back camera)
        super().__init__(
            content=self.camera, width=width, height=height, bgcolor=ft.Colors.BLACK, border_radius=8
        )

    async def start(self) -> bool:
        try:
            cams = await self.camera.get_available_cameras()
            if not cams:
                return False
            back = [c for c in cams if c.lens_direction == fc.CameraLensDirection.BACK]
            chosen = (back or cams)[0]
            await self.camera.initialize(chosen, fc.ResolutionPreset.HIGH, enable_audio=False)
        except Exception as exc:
            log.info("camera unavailable: %s", exc)
            return False
        self.mirrored = bool(self.page is not None and self.page.web) and (
            chosen.lens_direction != fc.CameraLensDirection.BACK
        )
        if self.mirrored:  # undo the plugin's flip of the preview
            self.camera.scale = ft.Scale(scale_x=-1, scale_y=1)
            self.camera.update()
        self.ready = True
        return True

    async def toggle_torch(self) -> bool:
        """Flashlight for dark stairwells; False when this camera has none."""
        try:
            self.torch = not self.torch
            await self.camera.set_flash_mode(fc.FlashMode.TORCH if self.torch else fc.FlashMode.OFF)
            return True
        except Exception:
            self.torch = False
            return False

    async def take_picture(self, as_seen: bool = False) -> bytes | None:
        """One JPEG frame. `as_seen`: as the scene stands before the lens, never mirrored (a
        photo kept as evidence); scanning needs no flip (zxing-cpp reads mirrored codes)."""
        if not self.ready:
            return None
        try:
            jpeg: bytes = await self.camera.take_picture()
        except Exception as exc:
            log.info("take_picture failed: %s", exc)
            return None
        if as_seen and self.mirrored:
            return await asyncio.to_thread(unmirror, jpeg)
        return jpeg


class SecureKeyStore:
    """The device key on a phone: Android Keystore / iOS Keychain-backed secure storage.

    Secure storage answers asynchronously, so the seed is read (or made and written)
    once at start-up by `ensure()`; afterwards `load()` answers from memory."""

    NAME = "hoso.device_key"

    def __init__(self) -> None:
        import flet_secure_storage as fss  # the phone build only: the browser keeps a key file

        self.storage = fss.SecureStorage()
        self._seed: bytes | None = None

    async def ensure(self) -> None:
        stored = await self.storage.get(self.NAME)
        if stored:
            self._seed = b64url_decode(stored)
            return
        seed = SigningKey.generate().seed
        await self.storage.set(self.NAME, b64url(seed))
        self._seed = seed

    def load(self) -> bytes | None:
        return self._seed

    def save(self, seed: bytes) -> None:
        raise RuntimeError("the phone's key is made by ensure() at start-up and never replaced")
