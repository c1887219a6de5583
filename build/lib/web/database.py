"""The web process's own database engine: bounded connects and statements.

A PostgreSQL that stops answering must turn into a 503 within seconds: the
connect gets a timeout and every statement DB_STATEMENT_TIMEOUT.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from models.db import make_engine
from settings import Settings

CONNECT_TIMEOUT_S = 5


def open_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    postgres = url.get_backend_name() == "postgresql"
    if postgres and "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_S)})
    idle = settings.db_max_idle_conns
    engine = make_engine(url, pool_size=idle, max_overflow=max(0, settings.db_max_open_conns - idle))
    if postgres:
        timeout_ms = int(settings.db_statement_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _statement_timeout(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET statement_timeout = {timeout_ms}")
            dbapi_connection.commit()

    return engine
