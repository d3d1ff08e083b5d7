"""Strict JSON bodies.

Litestar converts request bodies leniently (it would turn "13.98" into 13.98). Custody
data must arrive exactly as signed, and "wrong types" must be refused, so before any
handler runs, a JSON body is decoded with msgspec in strict mode against the
handler's declared body type. The result is kept as the request's parsed JSON, so
Litestar hands that same Struct to the handler (msgspec.convert passes an instance of
the target type through) instead of decoding and converting the body a second time.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import msgspec
from litestar import Request
from litestar.handlers import HTTPRouteHandler

from .errors import BadRequest

# PostgreSQL text cannot hold U+0000 (the driver fails the whole statement: a 500), and no field
# of this API means one, so a NUL in the query or in a JSON string is refused up front.
# In JSON a NUL can only be written `\u0000`, an escape unless its backslash is itself escaped.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _refuse_nul_in_query(request: Request[Any, Any, Any]) -> None:
    if b"%00" in request.scope["query_string"] or any("\x00" in v for v in request.query_params.values()):
        raise BadRequest("Invalid query parameter: text may not contain the NUL character (U+0000).")


@lru_cache(maxsize=256)
def _decoder(handler: HTTPRouteHandler) -> msgspec.json.Decoder[Any] | None:
    field = handler.parsed_data_field
    if field is None:
        return None
    annotation = field.annotation
    if not (isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)):
        return None
    return msgspec.json.Decoder(annotation, strict=True)


async def strict_json_body(request: Request[Any, Any, Any]) -> None:
    _refuse_nul_in_query(request)
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler) or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.content_type[0] not in ("application/json", ""):
        return  # forms (citizen pages) are parsed by their handlers
    decoder = _decoder(handler)
    if decoder is None:
        return
    body = await request.body()
    try:
        value = decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$")
        where = f" at `{path.rstrip('`').lstrip('.')}`" if path else ""
        raise BadRequest(f"Invalid request body{where}: {message}.") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}.") from None
    if b"\\u0000" in body and _JSON_NUL.search(body):
        raise BadRequest("Invalid request body: text may not contain the NUL character (U+0000).")
    # what Request.json() caches; Litestar's data extractor reads it from here
    request._json = request._connection_state.json = value
