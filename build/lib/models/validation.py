"""Parsers that turn loose input into the exact form the database stores.

Values are normalised the way PostgreSQL would print them back (lower-case
colon MACs, host addresses without a /32), so a re-read row compares equal to
what was written and imports can tell "unchanged" from "updated".
"""

from __future__ import annotations

import codecs
import ipaddress
import os
import re
import uuid
from enum import StrEnum
from typing import TypeVar

from models.errors import InvalidFieldError

E = TypeVar("E", bound=StrEnum)

# The spellings PostgreSQL's macaddr accepts: 6 hex pairs split by ':' or '-',
# 3 groups of 4 split by '.', 2 groups of 6 split by ':' or '-', or 12 bare hex digits.
_MAC_FORMS = (
    re.compile(r"^[0-9a-fA-F]{2}([:-])(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$"),
    re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$"),
    re.compile(r"^[0-9a-fA-F]{6}[:-][0-9a-fA-F]{6}$"),
    re.compile(r"^[0-9a-fA-F]{12}$"),
)


def normalize_encoding(field: str, value: object) -> str:
    """A router's text encoding by its codec name ("Windows-1252" -> cp1252): utf-8 or a
    code page that keeps ASCII as it is, since every command word is ASCII."""
    if isinstance(value, str):
        try:
            codec = codecs.lookup(value.strip()).name
            if "/interface".encode(codec) == b"/interface":
                return codec
        except (LookupError, UnicodeError):
            pass
    raise InvalidFieldError(field, value, "must be utf-8 or a code page such as cp1252 or cp1251")


def parse_uuid(field: str, value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            pass
    raise InvalidFieldError(field, value, "not a UUID")


def normalize_mac(field: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if any(form.match(text) for form in _MAC_FORMS):
            digits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
            return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    raise InvalidFieldError(field, value, "not a MAC address (expected e.g. aa:bb:cc:dd:ee:ff)")


def normalize_inet(field: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value.compressed
    if isinstance(value, str):
        try:
            iface = ipaddress.ip_interface(value.strip())
        except ValueError:
            pass
        else:
            if iface.network.prefixlen == iface.max_prefixlen:
                return iface.ip.compressed
            return iface.with_prefixlen
    raise InvalidFieldError(field, value, "not an IP address (expected e.g. 10.0.0.5)")


def parse_enum(field: str, value: object, enum_cls: type[E]) -> E:
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        try:
            return enum_cls(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in enum_cls)
    raise InvalidFieldError(field, value, f"must be one of {allowed}")


def require_text(field: str, value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise InvalidFieldError(field, value, "must be a non-empty string")


def normalize_ca(field: str, value: object) -> str | None:
    """A CA for API-SSL: PEM text holding certificates, or an absolute path to a PEM file.

    The path must be absolute because every worker reads it from its own working
    directory. A pasted private key is refused, and PEM text is never echoed back
    (only its first line names what was given).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFieldError(field, value, "must be a path to a CA file or the CA's PEM text")
    text = value.strip()
    if not text:
        return None
    if "-----BEGIN" in text:
        first_line = text.splitlines()[0].strip()
        if "PRIVATE KEY" in text:
            raise InvalidFieldError(field, first_line, "holds a private key: give only the CA's certificate")
        if "-----BEGIN CERTIFICATE-----" not in text or "-----END CERTIFICATE-----" not in text:
            raise InvalidFieldError(field, first_line, "PEM text without a complete CERTIFICATE block")
        return text + "\n"
    if not os.path.isabs(text):
        raise InvalidFieldError(
            field, text, "must be an absolute path to a PEM file (every worker reads it) or the PEM text"
        )
    return text
