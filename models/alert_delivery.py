"""Webhook deliveries: one row per (alert event, webhook), the truth about its sending.

Revision 0007. The unique (event_id, webhook_id) makes fanning an event out twice
(a redelivered message, a restarted evaluator) a no-op, and the row's id is the
`Idempotency-Key` every attempt carries, so a receiver that saw an attempt whose
answer was lost can drop the next one. A task sends only after claiming the row
(tasks/alert_delivery.py): two copies of its message never send at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.alert_rule import JSON_DOCUMENT
from models.base import Base, Timestamps
from models.enums import AlertEventType, DeliveryState
from models.types import enum_type

EVENT_ID_MAX = 200


class AlertDelivery(Timestamps, Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "webhook_id"),
        # The sweep's question: which pending rows are due?
        Index(None, "state", "next_attempt_at"),
        Index(None, "webhook_id"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # The evaluator's key for one event of one alert (e.g. "<alert id>:alert_firing"):
    # the same event fanned out again finds its rows already there.
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_MAX), nullable=False)
    webhook_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
    )
    event: Mapped[AlertEventType] = mapped_column(
        enum_type(AlertEventType, "alert_event_type", native=False, length=32),
        nullable=False,
    )
    # The event as tasks/alert_events.py encodes it: the body is built from it at each
    # attempt, so every attempt sends the same body whatever happened to the rule since.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON_DOCUMENT, nullable=False)
    state: Mapped[DeliveryState] = mapped_column(
        enum_type(DeliveryState, "delivery_state", native=False),
        nullable=False,
        default=DeliveryState.PENDING,
        server_default="pending",
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # A task attempting the delivery holds it until then (a killed one lets go by itself).
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Past this, a failed attempt makes the row dead (created + ALERT_DELIVERY_MAX_AGE;
    # a retry by hand starts a new window).
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return (
            f"AlertDelivery(id={self.id!r}, event_id={self.event_id!r}, webhook_id={self.webhook_id!r}, "
            f"state={self.state!r}, attempts={self.attempts!r})"
        )
