"""Endpoint declarations: the one source for parsing requests and for /openapi.json.

Each `Endpoint` names its method and path, its parameters (a JSON Schema each), its
request body and replies (names in web.schemas) and the exceptions it may raise.
From those declarations this module
- parses a request: every parameter converted and checked against its schema, the
  body size-bounded and validated; any problem is a 4xx naming the parameter;
- builds the Starlette routes (one per path, dispatching on the method);
- renders the OpenAPI 3.1 document, whose error responses come from the
  exceptions each endpoint declares, looked up in web.errors' table.

Only the JSON Schema the schemas use is understood: type, enum, const, min/max,
lengths, pattern, format (uuid, ipv6, date-time), properties/required/additionalProperties,
items, $ref, oneOf/anyOf.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from web.errors import ERRORS, ApiError
from web.schemas import SCHEMAS, Schema

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

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def description(self) -> str:
        return (self.handler.__doc__ or "").strip()


# -- validation -------------------------------------------------------------------------------


class Invalid(ValueError):
    """A value does not match its schema; `where` is the parameter or body field."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def resolve(schema: Schema) -> Schema:
    target = schema.get("$ref")
    if target is None:
        return schema
    return SCHEMAS[str(target).rsplit("/", 1)[-1]]


def validate(value: Any, schema: Schema, where: str) -> Any:
    """`value` as the handler should see it (an integral float for an integer becomes an
    int); raises Invalid naming `where` (or the nested field) when it breaks the schema."""
    schema = resolve(schema)
    for combinator, wanted in (("oneOf", "exactly one"), ("anyOf", "at least one")):
        if combinator in schema:
            results = []
            for option in schema[combinator]:
                try:
                    results.append(validate(value, option, where))
                except Invalid:
                    continue
            if not results or (wanted == "exactly one" and len(results) != 1):
                raise Invalid(where, schema.get("description") or "does not match the declared shape")
            value = results[0]
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if "integer" in names and isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON Schema: 3.0 is an integer
        if not any(_TYPES[name](value) for name in names):
            raise Invalid(where, "must be " + " or ".join(_article(n) for n in names))
    if "const" in schema and value != schema["const"]:
        raise Invalid(where, f"must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(where, "must be one of " + ", ".join(str(v) for v in schema["enum"] if v is not None))
    if isinstance(value, str):
        _check_string(value, schema, where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise Invalid(where, f"must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise Invalid(where, f"must be at most {schema['maximum']}")
    elif isinstance(value, dict):
        value = _check_object(value, schema, where)
    elif isinstance(value, list) and "items" in schema:
        value = [validate(item, schema["items"], f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def _article(kind: str) -> str:
    return {"integer": "an integer", "object": "an object", "array": "an array", "null": "null"}.get(
        kind, f"a {kind}"
    )


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _is_ipv6(value: str) -> bool:
    if "%" in value:  # a scope id: PostgreSQL's inet cannot store it
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


_FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "uuid": (lambda v: bool(_UUID.match(v)), "must be a UUID"),
    "ipv6": (_is_ipv6, "must be an IPv6 address"),
    "date-time": (_is_date_time, "must be an RFC 3339 date-time"),
}


def _check_string(value: str, schema: Schema, where: str) -> None:
    # PostgreSQL cannot store NUL, and a lone surrogate cannot be encoded: refuse both
    # here rather than let the driver fail with a 500.
    if "\x00" in value:
        raise Invalid(where, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(where, "must be valid UTF-8 text") from None
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise Invalid(where, f"must be at least {schema['minLength']} characters long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise Invalid(where, f"must be at most {schema['maxLength']} characters long")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise Invalid(where, schema.get("description") or f"must match {schema['pattern']}")
    check = _FORMATS.get(schema.get("format", ""))
    if check is not None and not check[0](value):
        raise Invalid(where, check[1])


def _check_object(value: dict[str, Any], schema: Schema, where: str) -> dict[str, Any]:
    properties: dict[str, Schema] = schema.get("properties", {})
    prefix = "" if where == "body" else f"{where}."
    for name in schema.get("required", []):
        if name not in value:
            raise Invalid(f"{prefix}{name}", "is required")
    if schema.get("additionalProperties") is False:
        for name in value:
            if name not in properties:
                raise Invalid(f"{prefix}{name}", "is not a known field")
    if len(value) < schema.get("minProperties", 0):
        raise Invalid(where, f"must set at least {schema['minProperties']} field(s)")
    return {
        name: validate(item, properties[name], f"{prefix}{name}") if name in properties else item
        for name, item in value.items()
    }


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
        value = validate(_coerce(raws[0], param.schema, param.name), param.schema, param.name)
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
        body = json.loads(b"".join(chunks))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise ApiError(400, "invalid_body", "the request body is not valid JSON") from None
    try:
        return validate(body, SCHEMAS[schema_name], "body")
    except Invalid as exc:
        raise ApiError(400, "invalid_body", str(exc), field=exc.where) from None


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
    500: "a bug: the answer hides the details, the log has them",
}


def _error_statuses(endpoint: Endpoint) -> dict[int, list[str]]:
    """status -> descriptions, from the declared exceptions and what parsing can refuse."""
    out: dict[int, list[str]] = {}
    for exc_class in endpoint.raises:
        kind = ERRORS[exc_class]
        out.setdefault(kind.status, []).append(f"`{kind.code}`: {kind.summary}")
    automatic = [500]
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
        entry: dict[str, Any] = {
            "description": reply.description,
            "content": {reply.media_type: {"schema": _reply_schema(reply)}},
        }
        if reply.headers:
            entry["headers"] = {name: {"schema": schema} for name, schema in reply.headers.items()}
        responses[str(reply.status)] = entry
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
    return operation


def _reply_schema(reply: Reply) -> Schema:
    if reply.media_type == "application/json":
        return {"$ref": f"#/components/schemas/{reply.schema}"}
    return {"type": "string"}


def openapi(endpoints: Iterable[Endpoint], *, title: str, version: str, description: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
