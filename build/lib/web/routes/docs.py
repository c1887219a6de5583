"""/openapi.json: rendered from the same declarations that parse the requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse, Response

from web.declare import Call, Endpoint, Reply, openapi

TITLE = "MikroTik traffic monitor"
VERSION = "0.1.0"
DESCRIPTION = (
    "Live per-customer bandwidth monitoring for MikroTik RouterOS. Every error answers "
    '`{"status": "error", "code": ..., "message": ...}`: `code` is stable, `message` is for people.'
)


def endpoint(documented: Sequence[Endpoint]) -> Endpoint:
    """The /openapi.json endpoint, describing `documented` and itself."""
    rendered: list[dict[str, Any]] = []

    async def openapi_document(call: Call) -> Response:
        """This API's OpenAPI 3.1 document."""
        if not rendered:
            rendered.append(
                openapi([*documented, this], title=TITLE, version=VERSION, description=DESCRIPTION)
            )
        return JSONResponse(rendered[0])

    this = Endpoint(
        "GET",
        "/openapi.json",
        openapi_document,
        "The OpenAPI document",
        "meta",
        (Reply(200, "OpenAPI 3.1", "OpenApi"),),
    )
    return this
