"""Typed errors for data the database must refuse.

Every message names the field and the offending value so an operator can fix the
row; secret fields (passwords) are named but their values never appear.
"""

from __future__ import annotations

SECRET_FIELDS = frozenset({"password", "pppoe_password", "hotspot_password", "secret"})


class DataError(ValueError):
    """Base for refused data; `field` and `value` say what and where."""

    def __init__(self, field: str, value: object, message: str) -> None:
        self.field = field
        self.value = None if field in SECRET_FIELDS else value
        super().__init__(message)


class InvalidFieldError(DataError):
    """A value that can never be valid for its column (bad MAC, bad IP, unknown enum...)."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        shown = "<hidden>" if field in SECRET_FIELDS else repr(value)
        super().__init__(field, value, f"invalid {field} {shown}: {reason}")
        self.reason = reason


class DuplicateCustomerError(DataError):
    """Another customer on the same router already uses this username."""

    def __init__(self, field: str, value: object, mikrotik_id: str | None) -> None:
        where = f"router {mikrotik_id!r}" if mikrotik_id else "this router"
        super().__init__(
            field, value, f"duplicate {field} {value!r}: another customer on {where} already has it"
        )
        self.mikrotik_id = mikrotik_id


class DuplicateNameError(DataError):
    """Another alert rule or webhook already has this name."""

    def __init__(self, what: str, value: object) -> None:
        super().__init__("name", value, f"duplicate name {value!r}: another {what} already has it")
