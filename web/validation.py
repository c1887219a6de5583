"""The part of JSON Schema that web.schemas uses, as a validator for requests.

Understood: type, enum, const, minimum/maximum, min/maxLength, pattern, format (uuid,
ipv6, date-time), properties/required/additionalProperties/minProperties, items, min/maxItems, $ref,
oneOf/anyOf. Messages name the parameter or field and never echo the value (a body
field may be a password).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from web.schemas import SCHEMAS, Schema


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
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise Invalid(where, f"must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise Invalid(where, f"must have at most {schema['maxItems']} items")
        if "items" in schema:
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


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262, where `$` is the end of the text; Python's `$`
    # also matches before a final newline. Our patterns hold no literal `$`.
    return re.compile(pattern.replace("$", r"\Z"))


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
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
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
