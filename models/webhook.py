"""Webhooks: where alert events are POSTed, in which format, signed with which secret.

Revision 0007. The secret is a `SecretText` like router passwords: it signs every
delivery (X-Mtmon-Signature, README "Webhooks") and is never shown again, in an
answer, a repr or a log line.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Boolean, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column, validates

from models.base import Base, Timestamps
from models.enums import WebhookFormat
from models.errors import InvalidFieldError
from models.types import SecretText, enum_type
from models.validation import parse_enum, require_text
from settings import Secret

URL_MAX = 2000
SECRET_MIN = 16
SECRET_MAX = 256


def normalize_url(field: str, value: Any) -> str:
    """An absolute http or https URL with a host, without credentials (they would be
    shown by every answer and log line that names the webhook: put them in the path
    or the receiver's own settings instead)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parts = urlsplit(text)
            port = parts.port  # raises on a port that is not a number in range
        except ValueError:
            parts, port = None, None
        if (
            parts is not None
            and parts.scheme in ("http", "https")
            and parts.hostname
            and len(text) <= URL_MAX
            and text.isascii()
            and not any(c.isspace() for c in text)
        ):
            if parts.username is not None or parts.password is not None:
                raise InvalidFieldError(field, None, "must not carry a user name or password")
            del port
            return text
    shown = value if isinstance(value, str) and "@" not in value else None
    raise InvalidFieldError(field, shown, "must be an http:// or https:// URL with a host")


class Webhook(Timestamps, Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    url: Mapped[str] = mapped_column(String(URL_MAX), nullable=False)
    format: Mapped[WebhookFormat] = mapped_column(
        enum_type(WebhookFormat, "webhook_format", native=False),
        nullable=False,
        default=WebhookFormat.GENERIC,
        server_default="generic",
    )
    secret: Mapped[Secret] = mapped_column(SecretText, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=true())

    @validates("name")
    def _check_name(self, key: str, value: Any) -> str:
        return require_text(key, value)

    @validates("url")
    def _check_url(self, key: str, value: Any) -> str:
        return normalize_url(key, value)

    @validates("format")
    def _check_format(self, key: str, value: Any) -> WebhookFormat:
        return parse_enum(key, value, WebhookFormat)

    @validates("secret")
    def _check_secret(self, key: str, value: Any) -> Secret:
        raw = value.get() if isinstance(value, Secret) else value
        if isinstance(raw, str) and SECRET_MIN <= len(raw) <= SECRET_MAX:
            return Secret(raw)
        raise InvalidFieldError(key, None, f"must be {SECRET_MIN} to {SECRET_MAX} characters")

    def __repr__(self) -> str:
        return (
            f"Webhook(id={self.id!r}, name={self.name!r}, url={self.url!r}, format={self.format!r}, "
            f"secret=<hidden>, enabled={self.enabled!r})"
        )
