"""What the data-layer commands share: the database session, errors as one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from models.db import make_engine, session_factory
from models.errors import DataError
from models.sync import RecordError

T = TypeVar("T")


def open_session(database_url: str | None) -> Session:
    try:
        engine = make_engine(database_url, pool_size=1, max_overflow=0)
    except (ArgumentError, ImportError) as exc:
        fail(f"cannot use the database URL: {type(exc).__name__}: {exc}")
    return session_factory(engine)()


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def db_error_text(exc: BaseException) -> str:
    """One line about a database failure. Engines hide parameters, so no row values
    (passwords) can appear; the SQL text after the first line is dropped too."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no detail'}"


def progress_printer(label: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        print(f"{label}: {done}/{total}", file=sys.stderr, flush=True)

    return report


def write_all_or_nothing(session: Session, write: Callable[[Session], T]) -> T:
    """Run `write` in one transaction and close the session; a bad record or a
    database error ends the command with one line and nothing written."""
    try:
        with session.begin():
            return write(session)
    except (RecordError, DataError) as exc:
        fail(f"{exc} (nothing was written)")
    except SQLAlchemyError as exc:
        fail(f"database error: {db_error_text(exc)} (nothing was written)")
    finally:
        session.close()
