"""Benchmark: the dashboard's customer search at ISP scale (`make bench-search`).

Not a test: nothing here asserts. Issue 22's target: p50 <= 20 ms for a 4-character
search over 50,000 customers.

For each size in BENCH_SEARCH_SIZES (50,000 and 200,000) a throw-away PostgreSQL schema
(harness/pg.py) is migrated to 0008, the revision before the search index, and filled
with that many customers by COPY: 20 routers, 5 packages, usernames `user<n>`, PPPoE
(80 %) and hotspot (15 %) usernames with 8 random hex digits, names from a list of
first and last names; BENCH_SEARCH_MONITORED (1,000) of them have an open monitor
session, so the monitored-first order has something to put first. Then, on the same
rows and in the same run:

- `before`: the query as it was before the index (web/queries/customers.py at b924f56,
  copied below as before_list_customers) on the schema at 0008;
- `after`: the schema upgraded to head (the index build is timed) and the web's own
  web.queries.customers.list_customers.

Each case is the dashboard's request (customers.js: limit 25, monitored_first=true):
a 4-character search (`ab12`), a longer one (`user4999`), a 2-character one (`ab`,
below the trigram index's 3), an empty search, and a deep offset (`offset=49000`).
A request is what the route does in its worker thread, in this process: a session from
the pool, list_customers, page_json and the JSON body; BENCH_SEARCH_REPEATS (30) of
them after 3 warm-ups, p50/p95/max in ms. EXPLAIN ANALYZE of the page query of each
case goes to the JSON, its top line and execution time to the table.

Prints one table and writes bench/results/search.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, func, or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bench.results import table, write_results
from bench.stack import interrupt_once, run_main
from harness.pg import migrated_schema
from models import Customer, CustomerStatus, DesiredState, MonitorSession
from models.db import make_engine, session_factory
from models.migrate import upgrade
from web.queries import customers as q

SIZES = [int(x) for x in os.environ.get("BENCH_SEARCH_SIZES", "50000,200000").split(",") if x]
REPEATS = int(os.environ.get("BENCH_SEARCH_REPEATS", "30"))
MONITORED = int(os.environ.get("BENCH_SEARCH_MONITORED", "1000"))
WARMUP = 3
PAGE = 25  # customers.js's PAGE_SIZE on a desktop
BEFORE_REVISION = "0008"

FIRST = [
    "Amina",
    "Brian",
    "Chloe",
    "David",
    "Esther",
    "Faith",
    "Grace",
    "Hassan",
    "Irene",
    "James",
    "Kevin",
    "Lucy",
    "Mary",
    "Njeri",
    "Otieno",
    "Peter",
    "Rose",
    "Samuel",
    "Tabitha",
    "Victor",
    "Wanjiru",
    "Yusuf",
    "Zawadi",
    "Abdi",
    "Beatrice",
]
LAST = [
    "Achieng",
    "Barasa",
    "Chebet",
    "Duale",
    "Gitau",
    "Hussein",
    "Juma",
    "Kamau",
    "Kariuki",
    "Langat",
    "Mwangi",
    "Njoroge",
    "Ochieng",
    "Omondi",
    "Otieno",
    "Rotich",
    "Shah",
    "Wafula",
    "Wambui",
    "Waweru",
]

# (case, q, offset): the dashboard's requests.
CASES: list[tuple[str, str | None, int]] = [
    ("q=ab12 (4 chars)", "ab12", 0),
    ("q=user4999", "user4999", 0),
    ("q=ab (2 chars)", "ab", 0),
    ("empty", None, 0),
    ("offset=49000", None, 49000),
]


# -- the code before the index (web/queries/customers.py at b924f56), for side by side --


def _before_open_session() -> ColumnElement[bool]:
    return (MonitorSession.customer_id == Customer.id) & (
        MonitorSession.desired_state == DesiredState.RUNNING
    )


def _before_conditions(f: q.CustomerFilter) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.q:
        escaped = f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        columns = (Customer.name, Customer.username, Customer.pppoe_username, Customer.hotspot_username)
        out.append(or_(*(c.ilike(pattern, escape="\\") for c in columns)))
    if f.status is not None:
        if f.status == CustomerStatus.ACTIVE:
            out.append(or_(Customer.status == f.status, Customer.status.is_(None)))
        else:
            out.append(Customer.status == f.status)
    return out


def _before_page_query(f: q.CustomerFilter, *, limit: int, offset: int, monitored_first: bool) -> Select[Any]:
    state = (
        select(MonitorSession.actual_state)
        .where(_before_open_session())
        .correlate(Customer)
        .limit(1)
        .scalar_subquery()
        .label("monitor_state")
    )
    query: Select[Any] = select(Customer, state).where(*_before_conditions(f))
    if monitored_first:
        query = query.order_by(case((exists().where(_before_open_session()), 0), else_=1))
    return query.order_by(Customer.name, Customer.id).limit(limit).offset(offset)


def before_list_customers(
    session: Session, f: q.CustomerFilter, *, limit: int, offset: int, monitored_first: bool
) -> q.CustomerPage:
    rows = session.execute(
        _before_page_query(f, limit=limit, offset=offset, monitored_first=monitored_first)
    ).all()
    total = session.scalar(select(func.count()).select_from(Customer).where(*_before_conditions(f))) or 0
    return q.CustomerPage([q.customer_json(row, state) for row, state in rows], int(total), False)


# -- filling a schema --


def fill(engine: Engine, size: int, seed: float = 0.22) -> None:
    """`size` customers over 20 routers and 5 packages, MONITORED of them with an open session.

    Generated by the server (generate_series, random() after setseed, so every run has
    the same names and tags): 200,000 rows take seconds, not minutes."""
    first = "ARRAY[" + ",".join(f"'{x}'" for x in FIRST) + "]"
    last = "ARRAY[" + ",".join(f"'{x}'" for x in LAST) + "]"
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(:seed)"), {"seed": seed})
        conn.execute(
            text(
                "INSERT INTO routers (id, name, host, port, username, password, tls, tls_mode) "
                "SELECT 'r' || r, 'r' || r, '127.0.0.1', 8728, 'admin', '', false, 'verify' "
                "FROM generate_series(0, 19) r"
            )
        )
        conn.execute(
            text(
                "INSERT INTO packages (name, download_bps, upload_bps) "
                "SELECT 'plan-' || p, p * 10000000, p * 2000000 FROM generate_series(1, 5) p"
            )
        )
        conn.execute(
            text(
                "INSERT INTO customers (mikrotik_id, username, name, service_type, pppoe_username, "
                "hotspot_username, static_ip, status, package_id) "
                "SELECT 'r' || (n % 20), 'user' || n, "
                f"({first})[1 + floor(random() * {len(FIRST)})::int] || ' ' || "
                f"({last})[1 + floor(random() * {len(LAST)})::int], "
                "kind::service_type, "
                "CASE WHEN kind = 'pppoe' THEN 'pp-' || tag END, "
                "CASE WHEN kind = 'hotspot' THEN 'hs-' || tag END, "
                "CASE WHEN kind = 'static_ip' THEN ('10.0.0.0'::inet + n) END, "
                "'active', 1 + (n % 5) "
                "FROM (SELECT n, substr(md5(random()::text), 1, 8) AS tag, "
                "CASE WHEN roll < 0.8 THEN 'pppoe' WHEN roll < 0.95 THEN 'hotspot' "
                "ELSE 'static_ip' END AS kind "
                "FROM (SELECT n, random() AS roll FROM generate_series(0, :size - 1) n) s) t"
            ),
            {"size": size},
        )
        conn.execute(
            text(
                "INSERT INTO monitor_sessions "
                "(id, customer_id, router_id, desired_state, actual_state, attempt) "
                "SELECT gen_random_uuid(), id, mikrotik_id, 'running', 'running', 0 "
                "FROM customers ORDER BY md5(username) LIMIT :monitored"
            ),
            {"monitored": MONITORED},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


# -- timing --


ListFn = Callable[..., q.CustomerPage]


@dataclass
class Row:
    customers: int
    code: str
    case: str
    p50_ms: float
    p95_ms: float
    max_ms: float
    page: int
    total: int
    capped: bool
    plan: str
    plan_ms: float


def request(db: sessionmaker[Session], list_fn: ListFn, qtext: str | None, offset: int) -> dict[str, Any]:
    """What the route's worker thread does for one GET /api/customers, and the body it serves."""
    found = q.CustomerFilter(q=qtext)
    with db() as session:
        page = list_fn(session, found, limit=PAGE, offset=offset, monitored_first=True)
    body = q.page_json(page, limit=PAGE, offset=offset)
    json.dumps(body).encode()  # the JSONResponse's rendering
    return body


def explain(engine: Engine, query: Select[Any]) -> tuple[str, float, str]:
    """EXPLAIN ANALYZE of a page query: its top plan line, execution ms, whole plan."""
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        lines = [r[0] for r in conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))]
    took = next((float(x.split(":")[1].split()[0]) for x in lines if x.startswith("Execution Time")), 0.0)
    nodes = [x.strip().lstrip("-> ").split("  (")[0] for x in lines if "(cost=" in x]
    scans = [n for n in nodes if "Scan" in n or "Sort" in n]
    return "; ".join(dict.fromkeys(scans))[:70], took, "\n".join(lines)


def measure(
    engine: Engine,
    size: int,
    code: str,
    list_fn: ListFn,
    page_query: Callable[..., Select[Any]],
    plans: dict[str, str],
) -> list[Row]:
    db = session_factory(engine)
    rows = []
    for name, qtext, offset in CASES:
        for _ in range(WARMUP):
            request(db, list_fn, qtext, offset)
        times = []
        body: dict[str, Any] = {}
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            body = request(db, list_fn, qtext, offset)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        top, took, plan = explain(
            engine, page_query(q.CustomerFilter(q=qtext), limit=PAGE, offset=offset, monitored_first=True)
        )
        plans[f"{size} {code} {name}"] = plan
        rows.append(
            Row(
                customers=size,
                code=code,
                case=name,
                p50_ms=round(statistics.median(times), 1),
                p95_ms=round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                max_ms=round(times[-1], 1),
                page=len(body["customers"]),
                total=body["total"],
                capped=bool(body.get("total_capped", False)),
                plan=top,
                plan_ms=round(took, 1),
            )
        )
        print(table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    return rows


COLUMNS = [
    ("customers", "customers"),
    ("code", "code"),
    ("case", "case"),
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("max_ms", "max ms"),
    ("page", "page"),
    ("total", "total"),
    ("capped", "capped"),
    ("plan_ms", "plan ms"),
    ("plan", "plan (scans, sorts)"),
]


def main() -> int:
    rows: list[Row] = []
    plans: dict[str, str] = {}
    index_build_s: dict[int, float] = {}
    with interrupt_once():
        for size in SIZES:
            with migrated_schema(prefix="bench_search", migrate=False) as url:
                upgrade(url, BEFORE_REVISION)
                engine = make_engine(url, pool_size=2, max_overflow=0, statement_timeout=60)
                try:
                    t0 = time.perf_counter()
                    fill(engine, size)
                    print(f"{size} customers filled in {time.perf_counter() - t0:.1f} s", flush=True)
                    rows += measure(engine, size, "before", before_list_customers, _before_page_query, plans)
                    engine.dispose()
                    t0 = time.perf_counter()
                    upgrade(url)
                    index_build_s[size] = round(time.perf_counter() - t0, 2)
                    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                        conn.execute(text("ANALYZE customers"))
                    print(f"upgrade to head (index build) {index_build_s[size]} s", flush=True)
                    rows += measure(engine, size, "after", q.list_customers, q.page_query, plans)
                finally:
                    engine.dispose()
    print()
    print(table(rows, COLUMNS))
    path = write_results(
        "search",
        rows,
        settings={"sizes": SIZES, "repeats": REPEATS, "monitored": MONITORED, "page": PAGE},
        index_build_s=index_build_s,
        plans=plans,
    )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    run_main(main)
