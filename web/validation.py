"""Requests checked against web.schemas with jsonschema-rs, in the project's words.

A `Validator` is one schema compiled once (draft 2020-12, the dialect of OpenAPI 3.1,
with formats asserted). What the project adds around the library:
- messages name the parameter or body field and never echo the value (a body field may
  be a password), built from the failing keyword and its schema, never from the
  library's text, which quotes the instance;
- text PostgreSQL cannot store (NUL) or UTF-8 cannot encode (a lone surrogate) is
  refused anywhere in a value, before the library sees it;
- date-time is the part of RFC 3339 that Python's datetime parses (no leap second, no
  year 0), since the handlers parse it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import jsonschema_rs

from web.schemas import SCHEMAS, Schema


class Invalid(ValueError):
    """A value does not match its schema; `where` is the parameter or body field."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:
        return False
    return True


# uuid and ipv6 are the library's own (ipv6 refuses a scope id, which PostgreSQL's inet
# cannot store).
_FORMAT_CHECKS: dict[str, Callable[..., bool]] = {"date-time": _is_date_time}
_FORMAT_REASONS = {
    "uuid": "must be a UUID",
    "ipv6": "must be an IPv6 address",
    "date-time": "must be an RFC 3339 date-time",
}


_REQUIRED = jsonschema_rs.ValidationErrorKind.Required


class Validator:
    """One schema, compiled once; `check` raises Invalid naming `where` or the nested field."""

    def __init__(self, schema: Schema, where: str) -> None:
        # The components ride along so that a `$ref` into them resolves; the error's
        # schema_path then points into this document.
        self._document: Schema = {**schema, "components": {"schemas": SCHEMAS}}
        self._where = where
        self._compiled = jsonschema_rs.Draft202012Validator(
            self._document,
            validate_formats=True,
            ignore_unknown_formats=False,
            formats=_FORMAT_CHECKS,
            offline=True,  # every $ref is local: never fetch one
        )

    def check(self, value: Any) -> None:
        if not _text_ok(value):
            where, reason = _bad_text(value, self._where)
            raise Invalid(where, reason)
        if self._compiled.is_valid(value):
            return
        try:
            # The outermost problem, a missing field before the others (as one reads the body).
            error = min(
                self._compiled.iter_errors(value),
                key=lambda e: (len(e.instance_path), not isinstance(e.kind, _REQUIRED)),
            )
        except ValueError:
            # The library copies the failing value into its error and gives up past 255
            # levels of nesting (only a body can nest that deep).
            raise Invalid(self._where, "is nested too deeply") from None
        raise self._invalid(error)

    def _invalid(self, error: jsonschema_rs.ValidationError) -> Invalid:
        where = _path(self._where, error.instance_path)
        kind = error.kind
        if isinstance(kind, _REQUIRED):
            return Invalid(_path(where, [kind.property]), "is required")
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            return Invalid(_path(where, kind.unexpected[:1]), "is not a known field")
        keyword = str(error.schema_path[-1])
        return Invalid(where, _reason(keyword, _at(self._document, error.schema_path[:-1])))


@functools.cache
def body_validator(name: str) -> Validator:
    """The validator of a request body named in web.schemas."""
    return Validator(SCHEMAS[name], "body")


def _path(where: str, steps: Sequence[str | int]) -> str:
    for step in steps:
        if isinstance(step, int):
            where = f"{where}[{step}]"
        else:
            where = step if where == "body" else f"{where}.{step}"
    return where


def _at(document: Schema, steps: list[str | int]) -> Schema:
    """The subschema at the error's schema_path (its location in `document`)."""
    node: Any = document
    for step in steps:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return {}  # a path the library spells otherwise: the generic words then
    return node if isinstance(node, dict) else {}


def _article(kind: str) -> str:
    return {"integer": "an integer", "object": "an object", "array": "an array", "null": "null"}.get(
        kind, f"a {kind}"
    )


_LIMITS = {
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "minProperties": "must set at least {} field(s)",
}


def _reason(keyword: str, schema: Schema) -> str:
    """What the keyword of `schema` asks, in words that never quote the value."""
    wanted: Any = schema.get(keyword)
    if keyword == "type":
        names = wanted if isinstance(wanted, list) else [wanted]
        return "must be " + " or ".join(_article(n) for n in names)
    if keyword == "const":
        return f"must be {wanted!r}"
    if keyword == "enum":
        return "must be one of " + ", ".join(str(v) for v in wanted if v is not None)
    if keyword == "format":
        return _FORMAT_REASONS.get(str(wanted), f"must be a {wanted}")
    if keyword in _LIMITS:
        return _LIMITS[keyword].format(wanted)
    if keyword == "pattern":
        return schema.get("description") or f"must match {wanted}"
    # anyOf, oneOf and anything else: the schema's own words for its shape
    return schema.get("description") or "does not match the declared shape"


# -- text PostgreSQL can store ------------------------------------------------------------------


def _text_trouble(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid UTF-8 text"
    return None


def _text_ok(value: Any) -> bool:
    """No string anywhere in `value` (keys included) holds NUL or a lone surrogate.

    Runs on every request, so it only answers yes or no; _bad_text finds where."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or (not item.isascii() and _text_trouble(item) is not None):
                return False
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _bad_text(value: Any, where: str) -> tuple[str, str]:
    """Where the first unstorable string is, and why (a key is reported at its object,
    since naming it would repeat it)."""
    pending: list[tuple[Any, str]] = [(value, where)]
    while pending:
        item, at = pending.pop()
        if isinstance(item, str):
            trouble = _text_trouble(item)
            if trouble is not None:
                return at, trouble
        elif isinstance(item, dict):
            for key in item:
                if _text_trouble(key) is not None:
                    return at, "has a field name that is not valid text"
            pending.extend((v, _path(at, [k])) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            pending.extend((v, _path(at, [i])) for i, v in reversed(list(enumerate(item))))
    raise AssertionError("_bad_text called on valid text")
