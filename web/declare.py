"""Endpoint declarations: the one source for parsing requests and for /openapi.json.

Each `Endpoint` names its method and path, its parameters (a JSON Schema each), its
request body and replies (names in web.schemas) and the exceptions it may raise.
From those declarations this module
- parses a request: every parameter converted and checked against its schema, the
  body size-bounded and validated; any problem is a 4xx naming the parameter;
- builds the Starlette routes (one per path, dispatching on the method);
- renders the OpenAPI 3.1 document, whose error responses come from the
  exceptions each endpoint declares, looked up in web.errors' table.

Values are checked by web.validation against the same schemas the document shows.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.errors import ERRORS, ApiError
from web.schemas import SCHEMAS, Schema
from web.validation import Invalid, Validator, body_validator

MAX_QUERY_BYTES = 4096  # the longest valid query, percent-encoded, is about half of it
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "path"]
    schema: Schema
    description: str
    required: bool = False
    # After the schema check: turns the value into what the handler wants; a
    # ValueError's text becomes the 400's message.
    convert: Callable[[Any], Any] | None = None
    validator: Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Compiled once, where the parameter is declared, not per request.
        object.__setattr__(self, "validator", Validator(self.schema, self.name))


@dataclass(frozen=True)
class Reply:
    status: int
    description: str
    schema: str | None  # name in web.schemas (JSON replies)
    media_type: str = "application/json"
    headers: Mapping[str, Schema] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """A parsed request: what a handler gets."""

    request: Request
    params: dict[str, Any]
    body: Any


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    replies: tuple[Reply, ...]
    params: tuple[Param, ...] = ()
    body: str | None = None  # schema name of a JSON request body
    raises: tuple[type[BaseException], ...] = ()
    # Reachable without credentials when API_TOKEN is set (web.auth reads this).
    public: bool = False

    def __post_init__(self) -> None:
        if self.body is not None:
            body_validator(self.body)  # compiled now: a schema the library refuses fails at import

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.handler.__doc__ or "")


# -- parsing ----------------------------------------------------------------------------------

_INTEGER = re.compile(r"^-?[0-9]{1,18}$")


def _coerce(raw: str, schema: Schema, where: str) -> Any:
    """Query and path values arrive as text: turn them into what the schema types."""
    kind = schema.get("type")
    if kind == "integer":
        if not _INTEGER.match(raw):
            raise Invalid(where, "must be an integer")
        return int(raw)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise Invalid(where, "must be true or false")
        return raw == "true"
    return raw


def parse_param(param: Param, raws: Sequence[str]) -> Any:
    if not raws:
        if param.required:
            raise ApiError(400, "missing_parameter", f"{param.name} is required", parameter=param.name)
        return param.schema.get("default")
    if len(raws) > 1:
        raise ApiError(400, "invalid_parameter", f"{param.name}: given more than once", parameter=param.name)
    try:
        value = _coerce(raws[0], param.schema, param.name)
        param.validator.check(value)
        return param.convert(value) if param.convert is not None else value
    except ValueError as exc:
        message = str(exc) if isinstance(exc, Invalid) else f"{param.name}: {exc}"
        raise ApiError(400, "invalid_parameter", message, parameter=param.name) from None


async def read_json_body(request: Request, schema_name: str) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "the request body must be application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the request body must be at most {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", f"the request body must be at most {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks), parse_float=_number)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise ApiError(400, "invalid_body", "the request body is not valid JSON") from None
    except RecursionError:
        # json.loads recurses once per level: thousands of nested brackets exhaust it.
        raise ApiError(400, "invalid_body", "the request body is nested too deeply") from None
    try:
        body_validator(schema_name).check(body)
    except Invalid as exc:
        raise ApiError(400, "invalid_body", str(exc), field=exc.where) from None
    return body


def _number(text: str) -> int | float:
    # JSON Schema counts 3.0 as an integer, so the handler gets it as one.
    value = float(text)
    return int(value) if value.is_integer() else value


async def parse(endpoint: Endpoint, request: Request) -> Call:
    if len(request.scope.get("query_string", b"")) > MAX_QUERY_BYTES:
        raise ApiError(414, "query_too_long", f"the query string must be at most {MAX_QUERY_BYTES} bytes")
    params: dict[str, Any] = {}
    for param in endpoint.params:
        if param.where == "query":
            raws = request.query_params.getlist(param.name)
        else:
            raws = [request.path_params[param.name]]
        params[param.name] = parse_param(param, raws)
    body = await read_json_body(request, endpoint.body) if endpoint.body is not None else None
    return Call(request=request, params=params, body=body)


# -- routes -----------------------------------------------------------------------------------


def routes(endpoints: Iterable[Endpoint]) -> list[Route]:
    """One Starlette route per path (so a wrong method is a 405 listing the right ones)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        methods = by_path.setdefault(endpoint.path, {})
        assert endpoint.method not in methods, f"{endpoint.method} {endpoint.path} declared twice"
        methods[endpoint.method] = endpoint
    return [Route(path, _dispatcher(methods), methods=list(methods)) for path, methods in by_path.items()]


def _dispatcher(methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        endpoint = methods[method]
        return await endpoint.handler(await parse(endpoint, request))

    return dispatch


# -- OpenAPI ----------------------------------------------------------------------------------

_AUTOMATIC_ERRORS = {
    400: "a parameter or the body is malformed (`parameter`/`field` names it)",
    413: "the request body is too large",
    414: "the query string is too long",
    415: "the request body is not application/json",
    403: "`forbidden_origin`: a state-changing request from a page of another origin (ALLOWED_ORIGINS)",
    429: "`too_many_attempts`: a bearer token from an address that sent too many wrong ones "
    "(AUTH_MAX_FAILURES in AUTH_FAILURE_WINDOW)",
    500: "a bug: the answer hides the details, the log has them",
}


def _error_statuses(endpoint: Endpoint) -> dict[int, list[str]]:
    """status -> descriptions, from the declared exceptions and what parsing can refuse."""
    out: dict[int, list[str]] = {}
    for exc_class in endpoint.raises:
        kind = ERRORS[exc_class]
        out.setdefault(kind.status, []).append(f"`{kind.code}`: {kind.summary}")
    automatic = [429, 500]  # any request may carry a bearer header (web.auth)
    if endpoint.method not in ("GET", "HEAD", "OPTIONS"):
        automatic.append(403)
    if endpoint.params:
        automatic.append(400)
    if any(p.where == "query" for p in endpoint.params):
        automatic.append(414)
    if endpoint.body is not None:
        automatic += [400, 413, 415]
    for status in automatic:
        out.setdefault(status, []).append(_AUTOMATIC_ERRORS[status])
    return out


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for reply in endpoint.replies:
        # Replies of one status in several media types (JSON, or CSV on request) share it.
        entry: dict[str, Any] = responses.setdefault(str(reply.status), {"description": "", "content": {}})
        entry["description"] = "; ".join(d for d in (entry["description"], reply.description) if d)
        entry["content"][reply.media_type] = {"schema": _reply_schema(reply)}
        if reply.headers:
            entry.setdefault("headers", {}).update(
                {name: {"schema": schema} for name, schema in reply.headers.items()}
            )
    for status, reasons in sorted(_error_statuses(endpoint).items()):
        entry = {
            "description": "; ".join(dict.fromkeys(reasons)),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        responses.setdefault(str(status), entry)
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": responses,
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.params:
        operation["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "description": p.description,
                "schema": p.schema,
            }
            for p in endpoint.params
        ]
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{endpoint.body}"}}},
        }
    if endpoint.public:
        operation["security"] = []  # overrides the document's default: no credentials needed
    else:
        responses.setdefault(
            "401",
            {
                "description": "API_TOKEN is set and the request carries no valid credentials",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    return operation


def _reply_schema(reply: Reply) -> Schema:
    if reply.media_type == "application/json":
        return {"$ref": f"#/components/schemas/{reply.schema}"}
    return {"type": "string"}


def openapi(endpoints: Iterable[Endpoint], *, title: str, version: str, description: str) -> dict[str, Any]:
    endpoints = list(endpoints)
    ids = [endpoint.operation_id for endpoint in endpoints]
    assert len(ids) == len(set(ids)), f"operation ids (handler names) must be unique: {sorted(ids)}"
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        # Either credential works when API_TOKEN is set (without it every route is open).
        "security": [{"bearerToken": []}, {"sessionCookie": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer", "description": "API_TOKEN"},
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "mtm_session",
                    "description": "the dashboard's session (POST /api/session)",
                },
            },
        },
    }
