"""Reading rows straight from a database URL with plain SQL, as an operator would see them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text


def fetch_rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def fetch_value(url: str, sql: str, **params: Any) -> Any:
    """The first column of the only row."""
    (row,) = fetch_rows(url, sql, **params)
    return row[0]
