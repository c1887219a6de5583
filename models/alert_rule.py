"""Alert rules: what to watch (kind and its parameters) and over whom (scope).

Revision 0007. The rules are evaluated elsewhere (the router watch's cycle, the
monitors' ping stream); this module only says what a valid rule is, in one place for
the API, the migration's default rules and the evaluator.

Parameters live in one JSON column because each kind has its own; `check_params`
is the one definition of what each kind takes (README, Alerts). Scope is text:
"all", "router:<router id>", "package:<package id>" or "customer:<customer uuid>".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, false
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, validates

from models.base import Base, Timestamps
from models.enums import AlertKind
from models.errors import InvalidFieldError
from models.types import enum_type
from models.validation import parse_enum, require_text

# JSONB on PostgreSQL (indexable, compared by value), JSON text elsewhere.
JSON_DOCUMENT = JSON().with_variant(postgresql.JSONB(), "postgresql")

SCOPE_MAX = 150
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# The one spelling of a scope, for this check and the API's schema alike (a router id is
# printable ASCII without spaces; a package id fits PostgreSQL's integer).
SCOPE_PATTERN = f"^(all|router:[!-~]{{1,100}}|package:[1-9][0-9]{{0,8}}|customer:{_UUID})$"
MAX_FOR_S = 86_400


@dataclass(frozen=True)
class _Number:
    """One parameter: an integer or any number, within [low, high]."""

    integer: bool
    low: float
    high: float
    low_exclusive: bool = False

    def check(self, field: str, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidFieldError(
                field, value, "must be an integer" if self.integer else "must be a number"
            )
        if self.integer and not float(value).is_integer():
            raise InvalidFieldError(field, value, "must be an integer")
        too_low = value <= self.low if self.low_exclusive else value < self.low
        if too_low or value > self.high:
            low = f"above {self.low:g}" if self.low_exclusive else f"at least {self.low:g}"
            raise InvalidFieldError(field, value, f"must be {low} and at most {self.high:g}")
        return int(value) if self.integer else value


_FOR_S = _Number(True, 0, MAX_FOR_S)

# Each kind's parameters: name -> (kind of value, required). One table for the model
# check, the JSON schemas (web/schemas.py) and the README.
PARAMS: dict[AlertKind, dict[str, tuple[_Number | tuple[str, ...], bool]]] = {
    AlertKind.UTILIZATION: {
        "direction": (("download", "upload"), True),
        "threshold_pct": (_Number(False, 0, 1000, low_exclusive=True), True),
        "for_s": (_FOR_S, True),
    },
    AlertKind.SESSION_FLAPS: {
        "count": (_Number(True, 1, 10_000), True),
        "window_min": (_Number(True, 1, 10_080), True),
    },
    AlertKind.ROUTER_TOTAL: {
        "threshold_bps": (_Number(True, 1, 10**15), True),
        "for_s": (_FOR_S, True),
    },
    AlertKind.WATCH_OFFLINE: {
        "for_s": (_Number(True, 1, MAX_FOR_S), True),
    },
    AlertKind.RTT: {
        "p95_ms": (_Number(False, 0, 60_000, low_exclusive=True), False),
        "loss_pct": (_Number(False, 0, 100, low_exclusive=True), False),
        "window_s": (_Number(True, 10, 3600), True),
    },
}


def check_params(kind: AlertKind, params: Any) -> dict[str, Any]:
    """The kind's parameters, checked and normalised; InvalidFieldError names `params.<name>`."""
    if not isinstance(params, dict):
        raise InvalidFieldError("params", None, "must be an object")
    declared = PARAMS[kind]
    for name in params:
        if name not in declared:
            raise InvalidFieldError(f"params.{name}", None, f"is not a parameter of a {kind.value} rule")
    out: dict[str, Any] = {}
    for name, (shape, required) in declared.items():
        if name not in params or params[name] is None:
            if required:
                raise InvalidFieldError(f"params.{name}", None, f"is required for a {kind.value} rule")
            continue
        value = params[name]
        if isinstance(shape, tuple):
            if value not in shape:
                raise InvalidFieldError(f"params.{name}", value, f"must be one of {', '.join(shape)}")
            out[name] = value
        else:
            out[name] = shape.check(f"params.{name}", value)
    if kind is AlertKind.RTT and "p95_ms" not in out and "loss_pct" not in out:
        raise InvalidFieldError("params", None, "an rtt rule needs p95_ms, loss_pct or both")
    return out


@dataclass(frozen=True)
class Scope:
    """Whom a rule covers: everyone, or one router, package or customer."""

    kind: str  # all, router, package, customer
    id: str | None = None

    def __str__(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


def parse_scope(field: str, value: Any) -> Scope:
    if isinstance(value, str) and re.fullmatch(SCOPE_PATTERN, value):
        if value == "all":
            return Scope("all")
        kind, _, ident = value.partition(":")
        return Scope(kind, str(uuid.UUID(ident)) if kind == "customer" else ident)
    raise InvalidFieldError(
        field, value, "must be all, router:<router id>, package:<package id> or customer:<customer uuid>"
    )


class AlertRule(Timestamps, Base):
    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    # VARCHAR + CHECK, like the engine's other vocabularies: a new kind is a plain migration.
    kind: Mapped[AlertKind] = mapped_column(enum_type(AlertKind, "alert_kind", native=False), nullable=False)
    scope: Mapped[str] = mapped_column(String(SCOPE_MAX), nullable=False, default="all", server_default="all")
    params: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT, nullable=False)
    # Off until someone turns it on: a shipped rule must not page anyone by surprise.
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())

    @validates("name")
    def _check_name(self, key: str, value: Any) -> str:
        return require_text(key, value)

    @validates("kind")
    def _check_kind(self, key: str, value: Any) -> AlertKind:
        return parse_enum(key, value, AlertKind)

    @validates("scope")
    def _check_scope(self, key: str, value: Any) -> str:
        return str(parse_scope(key, value))

    def check(self) -> None:
        """Kind and parameters together (they may be set in any order): call before a flush."""
        self.params = check_params(self.kind, self.params)

    def __repr__(self) -> str:
        return (
            f"AlertRule(id={self.id!r}, name={self.name!r}, kind={self.kind!r}, scope={self.scope!r}, "
            f"enabled={self.enabled!r})"
        )
