"""What the status route adds to service.status(): each monitored customer's interface."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Customer
from models.resolution import ResolutionError, resolve
from settings import Settings


def interfaces(session: Session, customer_ids: Collection[str], settings: Settings) -> dict[str, str | None]:
    """customer id -> the interface or queue its monitor watches (None: no longer resolvable).

    Resolved by the data layer, as the engine does, so the two cannot disagree."""
    if not customer_ids:
        return {}
    rows = session.scalars(select(Customer).where(Customer.id.in_([uuid.UUID(c) for c in customer_ids])))
    out: dict[str, str | None] = {}
    for row in rows:
        try:
            out[str(row.id)] = resolve(session, row, settings).interface
        except ResolutionError:
            out[str(row.id)] = None
    return out
