"""The router watch's database side against PostgreSQL: batched last_online/assigned_ip
writes, and the customers re-read off the loop."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from harness.polling import wait_for
from models import Customer
from tasks import sessions
from tasks.watch_database import WRITE_CHUNK, WatchDatabase, write_seen


def _customers(count: int, router: str = "r1") -> list[str]:
    ids = [uuid.uuid4() for _ in range(count)]
    tag = uuid.uuid4().hex[:6]
    with sessions.db() as s:
        for i, cid in enumerate(ids):
            s.add(
                Customer(
                    id=cid,
                    mikrotik_id=router,
                    username=f"u{i}-{tag}",
                    name=f"U {i}",
                    service_type="pppoe",
                    pppoe_username=f"u{i}-{tag}",
                    assigned_ip="10.9.9.9",
                )
            )
    return [str(cid) for cid in ids]


def test_watch_database_writes_many_customers_in_chunks(database: str) -> None:
    ids = _customers(2 * WRITE_CHUNK + 7)
    seen: dict[str, str | None] = {cid: f"10.1.{i // 250}.{i % 250 + 1}" for i, cid in enumerate(ids)}
    seen[ids[0]] = None  # seen going down: its address stays as recorded
    seen[ids[1]] = "not-an-address"  # never written into an inet column
    assert write_seen(seen) == len(ids)
    with sessions.db() as s:
        assert s.scalar(select(func.count()).where(Customer.last_online.is_not(None))) == len(ids)
        rows = {str(c.id): c.assigned_ip for c in s.scalars(select(Customer))}
    assert rows[ids[0]] == "10.9.9.9" and rows[ids[1]] == "10.9.9.9"
    assert rows[ids[2]] == seen[ids[2]] and rows[ids[-1]] == seen[ids[-1]]


def test_watch_database_flushes_and_reloads_in_its_thread(database: str) -> None:
    first, second = _customers(2)
    db = WatchDatabase("r1")
    db.load()
    assert db.directory is not None and set(db.directory.by_id) == {first, second}
    db.start()
    try:
        db.seen(first, "10.2.0.1")
        db.seen(first, None)  # came and went within one cycle: the address it had is kept
        db.flush()

        def written() -> bool:
            with sessions.db() as s:
                row = s.get(Customer, uuid.UUID(first))
                return row is not None and row.last_online is not None and row.assigned_ip == "10.2.0.1"

        wait_for(written, 5, what="the batch to be written")
        (third,) = _customers(1)
        db.reload()
        wait_for(lambda: db.directory is not None and third in db.directory.by_id, 5, what="the re-read")
    finally:
        db.close()
