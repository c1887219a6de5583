"""Customer search (web/queries/customers.py) against what it must keep meaning.

One PostgreSQL schema and one SQLite file, both migrated to head and filled once for
the module with customers whose searched fields hold wildcards, backslashes, mixed case
and NULLs; some have an open monitor session. Every answer is checked against a
reference computed here in Python (the matches) and a plain ORDER BY without LIMIT
(the order): the trigram indexes, the two-halves page query and the capped count must
change how fast, never what.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import case, exists, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from harness.pg import migrated_schema
from models import Customer, MonitorSession
from models.db import make_engine, session_factory
from models.migrate import upgrade
from web.queries import customers as q

ROUTER = "r1"
SEARCHED = ("name", "username", "pppoe_username", "hotspot_username")
# name, username, pppoe_username, hotspot_username
ODD = [
    ("100% Real", "pct", None, "hs-50%off"),
    ("Under_Score", "under_1", "pp_und", None),
    ("Back\\Slash", "bs\\1", None, None),
    ("Abby AB12", "ab12x", "pp-ab12", None),
    ("zed", "ZZ-AB12-zz", None, "HS-ab12"),
    ("Plain Name", "plain", None, None),
    ("A", "a", "pp-a", None),
    ("same", "same-1", None, None),
    ("same", "same-2", None, None),
]
QUERIES = [
    "ab12",
    "AB12",
    "ab1",
    "ab",
    "a",
    "A",
    "%",
    "50%",
    "_",
    "r_",
    "\\",
    "k\\s",
    "same",
    "pp-",
    "-",
    "none-such",
]


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"name": n, "username": u, "pppoe_username": p, "hotspot_username": h} for n, u, p, h in ODD
    ]
    # Filler, so that pages and the monitored/other boundary are crossed.
    rows += [
        {
            "name": f"Filler {i:03d}",
            "username": f"user{i}",
            "pppoe_username": f"pp-{i:04x}",
            "hotspot_username": None,
        }
        for i in range(60)
    ]
    for n, row in enumerate(rows):
        row.update(
            id=uuid.UUID(int=n + 1),
            mikrotik_id=ROUTER,
            service_type="hotspot" if row["hotspot_username"] else "pppoe",
            status="active",
        )
    return rows


ROWS = _rows()
MONITORED = {r["id"] for n, r in enumerate(ROWS) if n % 7 == 0}


def _fill(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Customer), ROWS)
        conn.execute(
            insert(MonitorSession),
            [
                {
                    "id": uuid.uuid4(),
                    "customer_id": cid,
                    "router_id": ROUTER,
                    "desired_state": "running",
                    "actual_state": "running",
                    "attempt": 0,
                }
                for cid in MONITORED
            ],
        )


@pytest.fixture(scope="module")
def pg() -> Iterator[Engine]:
    with migrated_schema() as url:
        engine = make_engine(url, pool_size=1, max_overflow=0)
        try:
            _fill(engine)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('search')) / 'search.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        _fill(engine)
        yield engine
    finally:
        engine.dispose()


def _matches(needle: str) -> set[uuid.UUID]:
    return {
        r["id"] for r in ROWS if any(r[f] is not None and needle.lower() in r[f].lower() for f in SEARCHED)
    }


def _reference_order(session: Session, ids: set[uuid.UUID]) -> list[uuid.UUID]:
    """The whole list in the old ORDER BY (monitored first, name, id), no LIMIT: the database's collation."""
    is_open = exists().where(
        MonitorSession.customer_id == Customer.id, MonitorSession.desired_state == "running"
    )
    ordered = session.scalars(
        select(Customer.id).order_by(case((is_open, 0), else_=1), Customer.name, Customer.id)
    ).all()
    return [i for i in ordered if i in ids]


def _page(
    session: Session, needle: str | None, *, limit: int, offset: int, exact: bool = True
) -> q.CustomerPage:
    return q.list_customers(
        session,
        q.CustomerFilter(q=needle),
        limit=limit,
        offset=offset,
        monitored_first=True,
        exact_total=exact,
    )


@pytest.mark.parametrize("seqscan", ["on", "off"])
def test_customer_search_postgresql_matches_substrings_as_before_by_index_or_scan(
    pg: Engine, seqscan: str
) -> None:
    # enable_seqscan=off makes the planner take the trigram indexes even for these few
    # rows (and for a 1-2 character search, which has no trigram: a full index scan).
    with session_factory(pg)() as session:
        session.execute(text(f"SET enable_seqscan = {seqscan}"))
        for needle in QUERIES:
            expected = _reference_order(session, _matches(needle))
            page = _page(session, needle, limit=500, offset=0)
            got = [uuid.UUID(c["id"]) for c in page.customers]
            assert (got, page.total, page.total_capped) == (expected, len(expected), False), needle


def test_customer_search_postgresql_plan_uses_trigram_indexes(pg: Engine) -> None:
    # The search's condition alone (a plan for the whole page may rightly prefer walking
    # ix_customers_name_id on these few rows): its OR is served by the four indexes.
    query = select(Customer.id).where(*q._conditions(q.CustomerFilter(q="ab12")))
    compiled = query.compile(pg, compile_kwargs={"literal_binds": True})
    with pg.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {compiled}")))
    assert {f"ix_customers_{c}_trgm" for c in SEARCHED} <= {
        word for line in plan.splitlines() for word in line.split() if word.endswith("_trgm")
    }


def test_customer_search_sqlite_matches_substrings_as_before(lite: Engine) -> None:
    with session_factory(lite)() as session:
        for needle in QUERIES:
            expected = _reference_order(session, _matches(needle))
            page = _page(session, needle, limit=500, offset=0)
            assert [uuid.UUID(c["id"]) for c in page.customers] == expected, needle
            assert page.total == len(expected)


@pytest.mark.parametrize("dialect", ["pg", "lite"])
def test_customer_search_monitored_first_pages_join_up_across_the_boundary(
    dialect: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(dialect)
    with session_factory(engine)() as session:
        for needle in (None, "filler", "a"):
            expected = _reference_order(session, _matches(needle or ""))
            for limit in (1, 4, 7):
                got: list[uuid.UUID] = []
                for offset in range(0, len(expected) + limit, limit):
                    page = _page(session, needle, limit=limit, offset=offset)
                    got += [uuid.UUID(c["id"]) for c in page.customers]
                assert got == expected, (needle, limit)
        # the same without monitored_first: name, id
        plain = q.list_customers(session, q.CustomerFilter(), limit=500, offset=0, monitored_first=False)
        names = [(c["name"], c["id"]) for c in plain.customers]
        assert len(names) == len(ROWS) and [n for n, _ in names] == [
            r[0] for r in session.execute(select(Customer.name).order_by(Customer.name, Customer.id))
        ]


@pytest.mark.parametrize("dialect", ["pg", "lite"])
def test_customer_search_monitored_filter_pages_past_the_first(
    dialect: str, request: pytest.FixtureRequest
) -> None:
    # monitored=true/false beside monitored first and an offset: the count of monitored
    # matches must not correlate the filter's own EXISTS away (a 500 schemathesis found).
    engine: Engine = request.getfixturevalue(dialect)
    with session_factory(engine)() as session:
        expected = _reference_order(session, _matches(""))
        is_open = exists().where(
            MonitorSession.customer_id == Customer.id, MonitorSession.desired_state == "running"
        )
        opened = set(session.scalars(select(Customer.id).where(is_open)))
        assert opened and opened != set(expected)  # both halves have rows
        for monitored in (True, False):
            wanted = [i for i in expected if (i in opened) == monitored]
            got: list[uuid.UUID] = []
            for offset in range(0, len(wanted) + 3, 3):
                page = q.list_customers(
                    session,
                    q.CustomerFilter(monitored=monitored),
                    limit=3,
                    offset=offset,
                    monitored_first=True,
                    exact_total=True,
                )
                got += [uuid.UUID(c["id"]) for c in page.customers]
                assert page.total == len(wanted)
            assert got == wanted, monitored


def test_customer_search_total_is_exact_up_to_the_lookahead_then_capped(pg: Engine) -> None:
    extra = q.TOTAL_LOOKAHEAD + 50
    with session_factory(pg)() as session:
        # Rolled back at the end: the module's other tests see the small set.
        session.execute(
            text(
                "INSERT INTO customers (mikrotik_id, username, name, service_type, status) "
                "SELECT 'r2', 'bulk' || n, 'Bulk ' || n, 'pppoe', 'active' FROM generate_series(1, :n) n"
            ),
            {"n": extra},
        )
        within = _page(session, "bulk", limit=25, offset=0, exact=False)
        assert (within.total, within.total_capped) == (25 + q.TOTAL_LOOKAHEAD, True)
        assert within.total > 0 + len(within.customers)  # a pager reading `total` offers a next page
        exact = _page(session, "bulk", limit=25, offset=0, exact=True)
        assert (exact.total, exact.total_capped) == (extra, False)
        far = _page(session, "bulk", limit=25, offset=100, exact=False)
        assert (far.total, far.total_capped) == (extra, False)  # the count reaches past offset + limit
        small = _page(session, "ab12", limit=25, offset=0, exact=False)
        assert (small.total, small.total_capped) == (len(_matches("ab12")), False)
        session.rollback()
