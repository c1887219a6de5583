"""Alerts: one row per alert (a rule's condition holding for a subject), open until resolved.

Revision 0008. The partial unique index on (rule_id, subject) WHERE resolved_at IS NULL
is THE guarantee of one open alert per rule and subject: firing is an INSERT .. ON
CONFLICT DO NOTHING and resolving an UPDATE .. WHERE resolved_at IS NULL, so of two
evaluators (a watch and its stale predecessor, a redelivered message) exactly one
changes the row, and only that one emits the event (tasks/alerts.py).

subject: "customer:<uuid>" or "router:<id>". values: the numbers behind the alert
(e.g. {"value": 97.3, "threshold": 95, "for_s": 600, "direction": "download"}).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from models.alert_rule import JSON_DOCUMENT, SCOPE_MAX
from models.base import Base, Timestamps
from models.enums import AlertState
from models.types import enum_type

OPEN_ALERT_INDEX = "uq_alerts_open_rule_subject"
OPEN_ALERT_WHERE = "resolved_at IS NULL"


class Alert(Timestamps, Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            OPEN_ALERT_INDEX,
            "rule_id",
            "subject",
            unique=True,
            postgresql_where=text(OPEN_ALERT_WHERE),
            sqlite_where=text(OPEN_ALERT_WHERE),
        ),
        # GET /api/alerts: newest first, by state.
        Index(None, "state", "started_at"),
        Index(None, "router_id"),
        Index(None, "customer_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    rule_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False
    )
    subject: Mapped[str] = mapped_column(String(SCOPE_MAX), nullable=False)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE")
    )
    router_id: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[AlertState] = mapped_column(
        enum_type(AlertState, "alert_state", native=False),
        nullable=False,
        default=AlertState.FIRING,
        server_default="firing",
    )
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    values: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT, nullable=False)
    summary: Mapped[str] = mapped_column(Text, nullable=False)

    def __repr__(self) -> str:
        return (
            f"Alert(id={self.id!r}, rule_id={self.rule_id!r}, subject={self.subject!r}, state={self.state!r})"
        )
