"""Webhooks: where alert events are POSTed, in which format, signed with which secret.

Revision 0007. The secret is a `SecretText` like router passwords: it signs every
delivery (X-Mtmon-Signature, README "Webhooks") and is never shown again, in an
answer, a repr or a log line.
"""

from __future__ import annotations

import re
from typing import Any

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


_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# The one spelling of a webhook URL, for this check and the API's schema alike: http or
# https, a host name or IPv4 address, an optional port, then printable ASCII. No user
# name or password can fit (an @ before the path): every answer and log line that names
# the webhook would show them.
URL_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~-]+(:{_PORT})?([/?#][!-~]*)?$"


def normalize_url(field: str, value: Any) -> str:
    if isinstance(value, str) and len(value) <= URL_MAX and re.fullmatch(URL_PATTERN, value):
        return value
    # The value is not shown: it may hold a password or the receiver's token.
    raise InvalidFieldError(field, None, "must be an http:// or https:// URL with a host (and no user name)")


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
