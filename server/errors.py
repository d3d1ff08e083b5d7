"""The one error shape: {"status_code", "detail": a sentence a person can act on, "extra"}."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    ValidationException,
)
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
)

__all__ = [
    "BadRequest",
    "Conflict",
    "NotAuthorizedException",
    "NotFoundException",
    "PermissionDeniedException",
    "TooLarge",
    "TooManyRequests",
    "Unprocessable",
    "exception_handlers",
]


class BadRequest(ClientException):
    status_code = HTTP_400_BAD_REQUEST


class Conflict(ClientException):
    status_code = HTTP_409_CONFLICT


class TooLarge(ClientException):
    status_code = HTTP_413_REQUEST_ENTITY_TOO_LARGE


class UnsupportedMediaType(ClientException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


class Unprocessable(ClientException):
    status_code = HTTP_422_UNPROCESSABLE_ENTITY


class TooManyRequests(ClientException):
    status_code = HTTP_429_TOO_MANY_REQUESTS


def _validation_detail(exc: ValidationException) -> str:
    """Turn Litestar's "Validation failed for POST /x" into a sentence naming the field."""
    extra = exc.extra
    if isinstance(extra, list) and extra:
        first = extra[0]
        if isinstance(first, dict):
            message = str(first.get("message", "")).strip()
            key = first.get("key")
            source = first.get("source")
            source = getattr(source, "value", source)  # Litestar's ParamType enum: "query", "path" …
            if message:
                where = "request body" if source in (None, "body") else f"{source} parameter"
                end = "" if message.endswith(".") else "."
                if key and key != "data" and str(key) not in message:
                    return f"Invalid {where} `{key}`: {message}{end}"
                return f"Invalid {where}: {message}{end}"
    detail = str(exc.detail)  # e.g. "Missing required query parameter 'second' for path …"
    return detail if detail.endswith(".") else f"{detail}."


def _http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        detail = _validation_detail(exc)
    elif isinstance(exc.__cause__, SerializationException):
        detail = f"The request body is not valid JSON: {exc.detail}."
    else:
        detail = exc.detail
    content: dict[str, Any] = {"status_code": exc.status_code, "detail": detail}
    if exc.extra:
        content["extra"] = exc.extra
    return Response(content, status_code=exc.status_code, headers=exc.headers)


def _internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    request.logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response(
        {
            "status_code": HTTP_500_INTERNAL_SERVER_ERROR,
            "detail": "Internal server error: nothing was changed; try again or report it.",
        },
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


exception_handlers = {
    HTTPException: _http_exception_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: _internal_error_handler,
}
