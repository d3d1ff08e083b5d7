"""Names the handlers use to receive the app's services (Litestar dependency injection)."""

from __future__ import annotations

from litestar.di import NamedDependency

from .custody.verifier import SignaturePool
from .db.engine import Database
from .keys import ServerKeys
from .settings import Settings

DB = NamedDependency[Database]
Cfg = NamedDependency[Settings]
KeysDep = NamedDependency[ServerKeys]
Signatures = NamedDependency[SignaturePool]
