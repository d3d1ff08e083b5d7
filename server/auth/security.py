"""Bearer-token authentication and the role guard.

Every route either declares `opt={"roles": {...}}` or is explicitly public with
`exclude_from_auth=True`; a route with neither is refused (fail closed).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from ..errors import NotAuthorizedException, PermissionDeniedException
from ..intake import service as intake
from .clients import client_ip
from .service import CurrentUser, TokenProblem, user_for_token

SESSION_COOKIE = "hoso_session"
CONSOLE_PREFIX = "/console"


class LoginRequired(NotAuthorizedException):
    """The console's pages answer this with a redirect to /console/login."""


class BearerAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        if connection.scope["path"].startswith(CONSOLE_PREFIX):
            # the console's pages sign in with a session cookie holding the same kind of token;
            # the JSON API never accepts the cookie, so CSRF there stays impossible
            session = connection.cookies.get(SESSION_COOKIE, "")
            if not session:
                raise LoginRequired("Sign in to the console first.")
            try:
                user = await user_for_token(connection.app.state.db, session)
            except TokenProblem as exc:
                raise LoginRequired(str(exc)) from None
            return AuthenticationResult(user=user, auth=session)
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        api_key = connection.headers.get("x-api-key", "")
        if api_key or (scheme.lower() == "bearer" and intake.looks_like_key(token.strip())):
            return await _key_user(connection, api_key or token.strip())
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException(
                "Sign in first: send `Authorization: Bearer TOKEN` from POST /api/v1/auth/token."
            )
        try:
            user = await user_for_token(connection.app.state.db, token.strip())
        except TokenProblem as exc:
            raise NotAuthorizedException(str(exc)) from None
        return AuthenticationResult(user=user, auth=token)


async def _key_user(connection: ASGIConnection[Any, Any, Any, Any], key: str) -> AuthenticationResult:
    """A unit's API key (server/intake): the routes that take one say so with `api_key`."""
    settings = connection.app.state.settings
    try:
        user = await intake.user_for_key(
            connection.app.state.db,
            key,
            client_ip(connection, settings.trusted_proxies),
            settings.login_failures_per_client,
            timedelta(seconds=settings.login_window_s),
        )
    except intake.KeyProblem as exc:
        raise NotAuthorizedException(str(exc)) from None
    return AuthenticationResult(user=user, auth=None)


async def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    # async, though it never awaits: Litestar runs a sync guard on a worker thread, a round
    # trip per request for a few dictionary lookups
    if handler.opt.get("exclude_from_auth") or connection.scope["path"].startswith("/schema"):
        return  # public routes, and the OpenAPI document Litestar serves
    roles = handler.opt.get("roles")
    if not roles:
        raise PermissionDeniedException("This route has no role policy, so nobody may use it.")
    user: CurrentUser = connection.user
    if user.api_key_id is not None and not handler.opt.get("api_key"):
        raise PermissionDeniedException(
            "Khóa API chỉ dùng được cho POST /api/v1/shipments và GET /api/v1/shipments/{code}. "
            "(An API key may only register shipments and read them.)"
        )
    if user.role not in roles:
        allowed = ", ".join(sorted(roles))
        raise PermissionDeniedException(f"A {user.role} may not do this; it needs the role: {allowed}.")


def roles(*names: str, api_key: bool = False) -> dict[str, Any]:
    """The route's role policy; `api_key=True` also lets a unit's API key call it (as a clerk)."""
    return {"roles": frozenset(names), "api_key": api_key}


PUBLIC: dict[str, Any] = {"exclude_from_auth": True}
STAFF = ("clerk", "dispatcher", "admin", "auditor")
