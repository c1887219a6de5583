"""Column types that differ per dialect, and the secret-holding text type.

PostgreSQL gets its native inet/macaddr/uuid; SQLite stores strings, which the
model validators have already normalised to what PostgreSQL would print.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from settings import Secret


class Inet(TypeDecorator[str]):
    impl = String(43)  # longest IPv6 with a prefix length
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.INET())
        return dialect.type_descriptor(String(43))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class MacAddr(TypeDecorator[str]):
    impl = String(17)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.MACADDR())
        return dialect.type_descriptor(String(17))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class SecretText(TypeDecorator[Secret]):
    """Text in the database, `settings.Secret` in Python: a loaded password cannot
    leak through a repr, a log line or an f-string by accident."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, Secret):
            return value.get()
        if isinstance(value, str):
            return value
        raise TypeError("a secret column takes a str or settings.Secret")

    def process_result_value(self, value: Any, dialect: Dialect) -> Secret | None:
        return None if value is None else Secret(value)
