"""Writing customers safely: duplicates found before the database complains, and
the database's own complaints turned into the same typed errors.

Raw IntegrityErrors are never passed on: their text can carry statement
parameters (passwords); DataError messages carry only field and value.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.customer import Customer
from models.errors import DataError, DuplicateCustomerError, InvalidFieldError

UNIQUE_FIELDS = ("username", "pppoe_username", "hotspot_username")
_CONSTRAINT_FIELD = {f"customers_mikrotik_id_{field}_key": field for field in UNIQUE_FIELDS}
_PG_DETAIL = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>.*)\) already exists")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<cols>[\w., ]+)")


def add_customer(session: Session, **fields: Any) -> Customer:
    """Validate, check the per-router unique usernames, add and flush one customer.

    Raises InvalidFieldError / DuplicateCustomerError; the caller's transaction
    decides what is committed, so a failing batch leaves nothing behind.
    """
    customer = Customer(**fields)
    duplicate = find_duplicate(session, customer)
    if duplicate is not None:
        raise duplicate
    session.add(customer)
    flush(session)
    return customer


def find_duplicate(session: Session, customer: Customer) -> DuplicateCustomerError | None:
    """The first unique (mikrotik_id, *username) this customer would collide on, if any."""
    for field in UNIQUE_FIELDS:
        value = getattr(customer, field)
        if value is None:
            continue
        query = select(Customer.id).where(
            Customer.mikrotik_id == customer.mikrotik_id, getattr(Customer, field) == value
        )
        if customer.id is not None:
            query = query.where(Customer.id != customer.id)
        clash = session.scalar(query)
        if clash is not None:
            return DuplicateCustomerError(field, value, customer.mikrotik_id)
    return None


def flush(session: Session) -> None:
    """session.flush(), with constraint violations raised as DataError (session rolled back)."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise translate_integrity_error(exc) from None


def translate_integrity_error(exc: IntegrityError) -> DataError:
    """The typed error for a violated customers constraint, naming field and value."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    detail = getattr(diag, "message_detail", None) or ""
    if constraint in _CONSTRAINT_FIELD:
        field = _CONSTRAINT_FIELD[constraint]
        match = _PG_DETAIL.search(detail)
        mikrotik_id, value = None, None
        if match:
            values = [v.strip() for v in match.group("vals").split(",", 1)]
            if len(values) == 2:
                mikrotik_id, value = values
        return DuplicateCustomerError(field, value, mikrotik_id)
    match = _SQLITE_UNIQUE.search(str(orig))
    if match:
        columns = [c.strip().split(".")[-1] for c in match.group("cols").split(",")]
        field = columns[-1]
        if field in UNIQUE_FIELDS:
            return DuplicateCustomerError(field, None, None)
    # Anything else (a CHECK, a foreign key): name the constraint, never the row.
    name = constraint or type(orig).__name__
    return InvalidFieldError(name, None, "violates a database constraint")
