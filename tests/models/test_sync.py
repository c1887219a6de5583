"""Upserts: progress on long runs, duplicates in one source refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Customer, Package
from models.sync import CustomerRecord, RecordError, upsert_customers


def test_sync_progress_reported_every_n_rows(pg_session: Session) -> None:
    records = [
        CustomerRecord(username=f"user{i:03d}", service_type="pppoe", pppoe_username=f"user{i:03d}")
        for i in range(25)
    ]
    seen: list[tuple[int, int]] = []
    with pg_session.begin():
        counts = upsert_customers(
            pg_session,
            "mikrotik-001",
            records,
            progress=lambda d, t: seen.append((d, t)),
            progress_every=10,
        )
    assert seen == [(10, 25), (20, 25), (25, 25)]
    assert (counts.created, counts.updated, counts.unchanged) == (25, 0, 0)
    assert pg_session.scalar(select(func.count()).select_from(Customer)) == 25
    assert pg_session.scalar(select(func.count()).select_from(Package)) == 0


def test_sync_same_username_twice_in_one_source_refused(pg_session: Session) -> None:
    records = [
        CustomerRecord(username="budi", service_type="pppoe", pppoe_username="budi", source="row 1"),
        CustomerRecord(username="budi", service_type="pppoe", pppoe_username="budi", source="row 2"),
    ]
    with pytest.raises(RecordError) as caught, pg_session.begin():
        upsert_customers(pg_session, "mikrotik-001", records)
    assert str(caught.value).startswith("row 2: duplicate username 'budi'")
    assert pg_session.scalar(select(func.count()).select_from(Customer)) == 0
