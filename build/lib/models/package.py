"""Service packages: the speeds a customer pays for, in bits per second."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from models.base import Base, Timestamps
from models.errors import InvalidFieldError
from models.validation import require_text


class Package(Timestamps, Base):
    __tablename__ = "packages"
    __table_args__ = (
        CheckConstraint("download_bps > 0", name="download_bps_positive"),
        CheckConstraint("upload_bps > 0", name="upload_bps_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    download_bps: Mapped[int] = mapped_column(BigInteger, nullable=False)
    upload_bps: Mapped[int] = mapped_column(BigInteger, nullable=False)

    @validates("name")
    def _check_name(self, key: str, value: Any) -> str:
        return require_text(key, value)

    @validates("download_bps", "upload_bps")
    def _check_speed(self, key: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        raise InvalidFieldError(key, value, "must be a positive number of bits per second")

    def __repr__(self) -> str:
        return (
            f"Package(id={self.id!r}, name={self.name!r}, download_bps={self.download_bps!r}, "
            f"upload_bps={self.upload_bps!r})"
        )
