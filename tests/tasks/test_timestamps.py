"""tasks.timestamps: how a moment is written out (REST and CLI, stream messages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from tasks.timestamps import iso, rfc3339

WHEN = datetime(2026, 11, 24, 10, 21, 44, 123999, tzinfo=UTC)


def test_timestamps_rfc3339_is_utc_with_milliseconds_cut_not_rounded() -> None:
    assert rfc3339(WHEN.astimezone(timezone(timedelta(hours=3)))) == "2026-11-24T10:21:44.123Z"
    assert rfc3339().endswith("Z")


def test_timestamps_iso_keeps_the_precision_and_the_offset() -> None:
    assert iso(WHEN) == "2026-11-24T10:21:44.123999+00:00"
    assert iso(WHEN.astimezone(timezone(timedelta(hours=7)))) == "2026-11-24T17:21:44.123999+07:00"
    assert iso(WHEN.replace(microsecond=0)) == "2026-11-24T10:21:44+00:00"


def test_timestamps_iso_reads_a_naive_moment_as_utc_and_keeps_none() -> None:
    assert iso(datetime(2026, 11, 24, 10, 21, 44)) == "2026-11-24T10:21:44+00:00"
    assert iso(None) is None
