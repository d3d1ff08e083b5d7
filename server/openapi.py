"""What the OpenAPI document says beyond the types: errors, media types, parameter patterns.

The document at /schema/openapi.json is generated from the route table, so it tells the truth
only where the routes say it. Handlers name the errors of their own area with Litestar's
`raises=[...]` (404, 409, 413, 422); what every route of a kind may answer is added here, in
one place, from the route's policy: a role-guarded route may answer 401 and 403, a route that
takes a body 413. Every error is documented in the one shape of server/errors.py, which is
also Litestar's (`status_code`, `detail`, `extra`). tests/api/test_openapi.py holds the server
to it with schemathesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.params import Parameter
from litestar.routes import HTTPRoute

from .errors import NotAuthorizedException, PermissionDeniedException, TooLarge

BEARER = "bearerToken"


def components() -> Components:
    """The document's components beside the schemas Litestar generates: how to sign in."""
    return Components(
        security_schemes={
            BEARER: SecurityScheme(
                type="http",
                scheme="bearer",
                description="`access_token` from POST /api/v1/auth/token",
            )
        }
    )


# what shared.codes.normalize accepts, as a person types it: 13 digits, in groups of four
# separated by one space, dash or dot, or not at all (the check digit is checked by the server: 400)
CODE_PATTERN = r"^[0-9]{4}[ .-]?[0-9]{4}[ .-]?[0-9]{4}[ .-]?[0-9]$"
ShipmentCode = Annotated[
    str,
    Parameter(
        pattern=CODE_PATTERN,
        description="the shipment's 13-digit code, with or without the spaces of `1234 5678 9012 3`",
    ),
]

BINARY = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]


def also_as(media_types: dict[str, Schema | Reference], status: int = 200) -> type[Operation]:
    """An Operation class whose `status` response may also come as these media types.

    For the routes whose one answer has several forms (an attachment is PNG, JPEG or JSON;
    a report is JSON or CSV): Litestar documents one media type per response.
    """

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            response = (self.responses or {}).get(str(status))
            if isinstance(response, OpenAPIResponse):
                response.content = {
                    **(response.content or {}),
                    **{name: OpenAPIMediaType(schema=schema) for name, schema in media_types.items()},
                }

    return _Operation


def multipart_files(field: str, description: str) -> type[Operation]:
    """An Operation class whose request body is multipart/form-data with repeated file parts
    `field` (a handler that reads `request.form()` itself documents no body otherwise)."""

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            files = Schema(type=OpenAPIType.ARRAY, items=BINARY, description=description)
            body = Schema(type=OpenAPIType.OBJECT, properties={field: files}, required=[field])
            self.request_body = RequestBody(
                content={"multipart/form-data": OpenAPIMediaType(schema=body)}, required=True
            )

    return _Operation


def _common_errors(handler: HTTPRouteHandler) -> list[type[HTTPException]]:
    """The errors a route may answer because of its kind, whatever it does."""
    out: list[type[HTTPException]] = []
    if handler.opt.get("roles"):
        out += [NotAuthorizedException, PermissionDeniedException]
    if "data" in handler.parsed_fn_signature.parameters:
        out.append(TooLarge)  # request_max_body_size
    return out


def document(app: Litestar) -> None:
    """Add the errors and the security every route's kind implies, once, before the document
    is first built (Litestar builds it on the first request for it)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            declared = list(handler.raises or [])
            handler.raises = declared + [e for e in _common_errors(handler) if e not in declared]
            if handler.opt.get("roles") and not handler.security:
                handler.security = [{BEARER: []}]


__all__ = [
    "BINARY",
    "CODE_PATTERN",
    "ShipmentCode",
    "also_as",
    "components",
    "document",
    "multipart_files",
]
