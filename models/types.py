"""Column types that differ per dialect, enum columns, and the secret-holding text type.

PostgreSQL gets its native inet/macaddr/uuid; SQLite stores strings, which the
model validators have already normalised to what PostgreSQL would print.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Enum, String
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from models.enums import CustomerStatus, enum_values
from settings import Secret


def enum_type(enum_cls: type[StrEnum], name: str, *, native: bool, length: int = 16) -> Enum:
    """An enum column storing the members' values.

    native: a PostgreSQL ENUM type called `name` (the seed's customers columns);
    otherwise VARCHAR(16) + CHECK on every dialect, which a plain migration can
    extend (the engine's own vocabularies), of `length` characters. SQLite always
    gets the CHECK.
    """
    return Enum(
        enum_cls,
        name=name,
        native_enum=native,
        create_constraint=True,
        values_callable=enum_values,
        validate_strings=True,
        **({} if native else {"length": length}),
    )


class _PostgresNativeString(TypeDecorator[str]):
    """A PostgreSQL type read back as its text; a string column elsewhere."""

    impl = String
    cache_ok = True
    postgresql_type: TypeEngine[Any]
    length: int

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(self.postgresql_type)
        return dialect.type_descriptor(String(self.length))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class Inet(_PostgresNativeString):
    postgresql_type = postgresql.INET()
    length = 43  # longest IPv6 with a prefix length
    cache_ok = True  # SQLAlchemy asks each subclass to say so itself


class MacAddr(_PostgresNativeString):
    postgresql_type = postgresql.MACADDR()
    length = 17
    cache_ok = True


class CustomerStatusType(TypeDecorator[CustomerStatus]):
    """The seed's `status customer_status`, which may be NULL.

    PostgreSQL fills the column's default whenever an INSERT leaves the column out
    (the seed's own sample rows), so a NULL can only come from a writer that sent
    "not set" explicitly, as a Go client with a nil value does. It is read as
    'active', as it was before revision 0005 moved the column's default to the
    seed's newest 'inactive': reading it otherwise would make such customers
    unmonitorable by an upgrade, without anyone having changed them. The models
    never write NULL (the validator refuses it).
    """

    impl = enum_type(CustomerStatus, "customer_status", native=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> CustomerStatus:
        return CustomerStatus.ACTIVE if value is None else CustomerStatus(value)


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
