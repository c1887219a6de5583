"""Key names: the prescribed stream names, and one distinct key per id."""

from __future__ import annotations

from tasks import keys


def test_keys_streams_match_the_contract() -> None:
    assert keys.COMBINED_STREAM == "mikrotik:traffic:customers"
    assert keys.customer_stream("7f0c") == "mikrotik:traffic:customer:7f0c"


def test_keys_are_distinct_per_id_and_kind() -> None:
    names = {
        keys.COMBINED_STREAM,
        keys.GLOBAL_SLOTS,
        keys.LEASES,
        keys.FENCE_COUNTER,
        keys.customer_stream("a"),
        keys.customer_stream("b"),
        keys.router_slots("a"),
        keys.router_slots("b"),
        keys.customer_owner("a"),
        keys.customer_owner("b"),
        keys.session_stop("a"),
        keys.session_stop("b"),
    }
    assert len(names) == 12
    assert all(name.startswith(keys.PREFIX + ":") for name in names)


def test_keys_customer_id_is_recovered_from_a_stream_name() -> None:
    assert keys.customer_id_from_stream(keys.customer_stream("7f0c")) == "7f0c"
    assert keys.customer_id_from_stream(keys.customer_stream("7f0c").encode()) == "7f0c"
    assert keys.customer_id_from_stream(keys.COMBINED_STREAM) is None
    assert keys.customer_id_from_stream(keys.CUSTOMER_STREAM_PREFIX) is None
