"""Throw-away PostgreSQL schemas migrated to head.

    with migrated_schema() as url:      # a SQLAlchemy URL string pinned to the schema
        engine = make_engine(url)

The URL carries `options=-csearch_path=<schema>`, so anything given it (a Celery
worker subprocess, uvicorn, the import CLI) lands in the same schema without knowing
about it. The schema is dropped with CASCADE afterwards, even on failure. The base
database is TEST_DATABASE_URL (default: the local `test` database, trust auth).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

BASE_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def schema_url(schema: str, base_url: str = BASE_DATABASE_URL) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def migrated_schema(
    base_url: str = BASE_DATABASE_URL, *, prefix: str = "t", migrate: bool = True
) -> Iterator[str]:
    """Create a fresh schema in the base database, migrate it, yield its URL, drop it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = schema_url(schema, base_url)
        try:
            if migrate:
                from models.migrate import upgrade

                upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                # Sessions still open elsewhere (a worker) must not block the drop.
                conn.execute(text("SET lock_timeout = '10s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()
