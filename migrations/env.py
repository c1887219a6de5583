"""Alembic environment: one URL source order, PostgreSQL and SQLite alike.

URL precedence: `-x url=...` on the command line, then `config.attributes["url"]`
(tests and models.migrate), then `sqlalchemy.url` if someone set it, then
settings.database_url (DATABASE_URL, else the seed's DB_*, else embedded SQLite).
A caller may also hand over an open connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from models import Base
from models.db import make_engine
from settings import get_settings

config = context.config

if config.config_file_name is not None and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        url = config.attributes.get("url")
    if not url:
        url = config.get_main_option("sqlalchemy.url")
    if not url:
        url = get_settings().database_url
    return str(url)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER constraints; batch mode rebuilds the table instead.
        render_as_batch=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    # No statement timeout: a schema change on a large table may rightly take longer
    # than any query should.
    engine = make_engine(database_url(), pool_size=1, max_overflow=0, statement_timeout=0)
    try:
        with engine.connect() as conn:
            _run_on(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
