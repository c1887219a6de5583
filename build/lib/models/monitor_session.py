"""Monitor sessions: the record of which monitors should be running.

Celery only launches; this table is the truth. A partial unique index lets each
customer have at most one open session (desired_state='running'), which is what
makes concurrent start calls single-flight.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Timestamps
from models.customer import Customer
from models.enums import ActualState, DesiredState
from models.types import enum_type

OPEN_SESSION_INDEX = "uq_monitor_sessions_open_customer"


class MonitorSession(Timestamps, Base):
    __tablename__ = "monitor_sessions"
    __table_args__ = (
        Index(
            OPEN_SESSION_INDEX,
            "customer_id",
            unique=True,
            postgresql_where=text("desired_state = 'running'"),
            sqlite_where=text("desired_state = 'running'"),
        ),
        Index(None, "desired_state", "actual_state"),
        Index(None, "router_id"),
        CheckConstraint("attempt >= 0", name="attempt_not_negative"),
        CheckConstraint("max_duration_s IS NULL OR max_duration_s > 0", name="max_duration_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
    )
    router_id: Mapped[str] = mapped_column(String(100), nullable=False)
    # VARCHAR + CHECK rather than PostgreSQL enums: states are the engine's to
    # extend, and a CHECK change is a plain migration on every dialect.
    desired_state: Mapped[DesiredState] = mapped_column(
        enum_type(DesiredState, "monitor_desired_state", native=False),
        nullable=False,
        default=DesiredState.RUNNING,
    )
    actual_state: Mapped[ActualState] = mapped_column(
        enum_type(ActualState, "monitor_actual_state", native=False),
        nullable=False,
        default=ActualState.PENDING,
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    task_id: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stop_reason: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(255))
    max_duration_s: Mapped[int | None] = mapped_column(Integer)

    customer: Mapped[Customer] = relationship()

    def __repr__(self) -> str:
        return (
            f"MonitorSession(id={self.id!r}, customer_id={self.customer_id!r}, "
            f"router_id={self.router_id!r}, desired_state={self.desired_state!r}, "
            f"actual_state={self.actual_state!r}, attempt={self.attempt!r})"
        )
