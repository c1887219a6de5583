"""Everything PostgreSQL knows about a schema's objects, in a form two schemas can be
compared by: columns with exact types and defaults, constraints, indexes, enum
types, triggers and functions, as the server itself prints their definitions.

Alembic's compare_metadata checks the models against a database; this checks two
databases against each other (a seed-built one and a migrated one), names included.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

# alembic_version exists only where Alembic ran; it is bookkeeping, not schema.
_SKIP = "alembic_version"

_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname NOT LIKE 'alembic_version%'
        ORDER BY 1
    """,
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped AND c.relname <> :skip
        ORDER BY 1, 2
    """,
    "constraints": """
        SELECT cl.relname, co.conname, co.contype::text, pg_get_constraintdef(co.oid)
        FROM pg_constraint co
        JOIN pg_class cl ON cl.oid = co.conrelid
        JOIN pg_namespace n ON n.oid = cl.relnamespace
        WHERE n.nspname = current_schema() AND cl.relname <> :skip
        ORDER BY 1, 2
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename <> :skip
        ORDER BY 1, 2
    """,
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
        FROM pg_type t
        JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = current_schema()
        GROUP BY 1 ORDER BY 1
    """,
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND NOT t.tgisinternal
        ORDER BY 1, 2
    """,
    "functions": """
        SELECT p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
               l.lanname, p.prosrc
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = current_schema()
        ORDER BY 1
    """,
}


def schema_shape(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """The current schema's objects; the schema's own name is cut out of definitions."""
    schema = conn.scalar(text("SELECT current_schema()"))
    assert schema is not None

    def unqualified(value: Any) -> Any:
        return value.replace(f"{schema}.", "") if isinstance(value, str) else value

    shape: dict[str, list[tuple[Any, ...]]] = {}
    for name, query in _QUERIES.items():
        rows = conn.execute(text(query), {"skip": _SKIP}).all()
        shape[name] = [tuple(unqualified(value) for value in row) for row in rows]
    return shape
