"""Bearer-token authentication and the role guard.

Every route either declares `opt={"roles": {...}}` or is explicitly public with
`exclude_from_auth=True`; a route with neither is refused (fail closed).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from ..errors import NotAuthorizedException, PermissionDeniedException
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
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException(
                "Sign in first: send `Authorization: Bearer TOKEN` from POST /api/v1/auth/token."
            )
        try:
            user = await user_for_token(connection.app.state.db, token.strip())
        except TokenProblem as exc:
            raise NotAuthorizedException(str(exc)) from None
        return AuthenticationResult(user=user, auth=token)


async def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    # async, though it never awaits: Litestar runs a sync guard on a worker thread, a round
    # trip per request for a few dictionary lookups
    if handler.opt.get("exclude_from_auth") or connection.scope["path"].startswith("/schema"):
        return  # public routes, and the OpenAPI document Litestar serves
    roles = handler.opt.get("roles")
    if not roles:
        raise PermissionDeniedException("This route has no role policy, so nobody may use it.")
    user: CurrentUser = connection.user
    if user.role not in roles:
        allowed = ", ".join(sorted(roles))
        raise PermissionDeniedException(f"A {user.role} may not do this; it needs the role: {allowed}.")


def roles(*names: str) -> dict[str, Any]:
    return {"roles": frozenset(names)}


PUBLIC: dict[str, Any] = {"exclude_from_auth": True}
STAFF = ("clerk", "dispatcher", "admin", "auditor")
