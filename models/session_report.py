"""Session reports: what one monitor session measured, kept after its stream expired.

One row per monitor session, written once, in the transaction that closes the
session (tasks/session_reports.py). Every number of the report's JSON (README,
Session reports) is a column of its own, named as the CSV names it
(`download_peak_bps`, `rtt_median_ms`...), so reports can be listed, sorted and
compared in SQL without parsing anything. The row goes with its session (and the
session with its customer).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

VERDICTS = ("saturated by own traffic", "loss without load")
DIRECTIONS = ("download", "upload")
# The per-direction numbers and the RTT numbers, as the JSON nests them.
DIRECTION_FIELDS = ("peak_bps", "avg_bps", "p95_bps", "bytes", "at_plan_s")
RTT_FIELDS = (
    "probes",
    "answered",
    "loss_pct",
    "median_ms",
    "p95_ms",
    "idle_median_ms",
    "idle_p95_ms",
    "load_median_ms",
    "load_p95_ms",
)


def _verdict_check() -> str:
    return "verdict IS NULL OR verdict IN (" + ", ".join(repr(v) for v in VERDICTS) + ")"


class SessionReport(Base):
    __tablename__ = "session_reports"
    __table_args__ = (
        # A customer's sessions, newest first (GET /api/customers/{id}/sessions).
        Index(None, "customer_id", "started_at"),
        CheckConstraint("samples >= 0", name="samples_not_negative"),
        CheckConstraint("missing_s >= 0", name="missing_not_negative"),
        CheckConstraint(_verdict_check(), name="verdict_known"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("monitor_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    # As the session's stream entries named them (they may change after it).
    username: Mapped[str] = mapped_column(String(100), nullable=False)
    customer_name: Mapped[str] = mapped_column(String(255), nullable=False)
    router: Mapped[str] = mapped_column(String(255), nullable=False)
    interface: Mapped[str] = mapped_column(String(255), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    duration_s: Mapped[float] = mapped_column(Float, nullable=False)
    interval_s: Mapped[float] = mapped_column(Float, nullable=False)
    samples: Mapped[int] = mapped_column(Integer, nullable=False)
    missing_s: Mapped[int] = mapped_column(Integer, nullable=False)
    stop_reason: Mapped[str] = mapped_column(Text, nullable=False)
    # Entries of the session had expired from its stream before the report was made.
    partial: Mapped[bool] = mapped_column(Boolean, nullable=False)
    package: Mapped[str | None] = mapped_column(String(100))
    package_download_bps: Mapped[int | None] = mapped_column(BigInteger)
    package_upload_bps: Mapped[int | None] = mapped_column(BigInteger)

    download_peak_bps: Mapped[int | None] = mapped_column(BigInteger)
    download_avg_bps: Mapped[int | None] = mapped_column(BigInteger)
    download_p95_bps: Mapped[int | None] = mapped_column(BigInteger)
    download_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    download_at_plan_s: Mapped[float | None] = mapped_column(Float)
    upload_peak_bps: Mapped[int | None] = mapped_column(BigInteger)
    upload_avg_bps: Mapped[int | None] = mapped_column(BigInteger)
    upload_p95_bps: Mapped[int | None] = mapped_column(BigInteger)
    upload_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    upload_at_plan_s: Mapped[float | None] = mapped_column(Float)

    rtt_probes: Mapped[int] = mapped_column(Integer, nullable=False)
    rtt_answered: Mapped[int] = mapped_column(Integer, nullable=False)
    rtt_loss_pct: Mapped[float | None] = mapped_column(Float)
    rtt_median_ms: Mapped[float | None] = mapped_column(Float)
    rtt_p95_ms: Mapped[float | None] = mapped_column(Float)
    rtt_idle_median_ms: Mapped[float | None] = mapped_column(Float)
    rtt_idle_p95_ms: Mapped[float | None] = mapped_column(Float)
    rtt_load_median_ms: Mapped[float | None] = mapped_column(Float)
    rtt_load_p95_ms: Mapped[float | None] = mapped_column(Float)
    verdict: Mapped[str | None] = mapped_column(String(40))

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    def __repr__(self) -> str:
        return (
            f"SessionReport(session_id={self.session_id!r}, customer_id={self.customer_id!r}, "
            f"samples={self.samples!r}, partial={self.partial!r})"
        )
