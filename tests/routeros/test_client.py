"""RouterClient's public surface: life-cycle, arguments, stats, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.polling import wait_for
from routeros import (
    FatalError,
    LoginError,
    ProtocolError,
    RouterClient,
    RouterEndpoint,
    RouterError,
    TrapError,
    UnreachableError,
)
from routeros.client import build_words
from routeros.simulator import Simulator
from tests.routeros.client_support import endpoint_for, monitor, pppoe_interfaces, running_sim


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with running_sim() as s:
        yield s


def test_client_errors_form_the_contract_hierarchy() -> None:
    assert issubclass(LoginError, TrapError) and issubclass(TrapError, RouterError)
    assert issubclass(UnreachableError, RouterError)
    assert issubclass(FatalError, ProtocolError) and issubclass(ProtocolError, RouterError)
    several = TrapError(
        "no such command or directory (x)",
        0,
        [("no such command or directory (x)", 0), ("no such command prefix", 0)],
    )
    assert "no such command prefix" in str(several)
    assert several.message == "no such command or directory (x)" and several.category == 0


def test_client_build_words_orders_attrs_proplist_queries() -> None:
    words = build_words(
        "/interface/print", {"stats": ""}, ["?type=pppoe-in", "?running=true"], ["name", "type"]
    )
    assert words == ["/interface/print", "=stats=", "=.proplist=name,type", "?type=pppoe-in", "?running=true"]
    with pytest.raises(ValueError):
        build_words("interface/print")


def test_client_call_before_connect_raises_unreachable(sim: Simulator) -> None:
    client = RouterClient(endpoint_for(sim))
    with pytest.raises(UnreachableError, match="connect"):
        client.call("/system/identity/print")
    with pytest.raises(UnreachableError):
        client.stream("/interface/monitor-traffic", {"interface": "ether1"})


def test_client_connect_is_idempotent_and_uses_one_session(sim: Simulator) -> None:
    # Sessions of earlier tests' clients may still be closing on the router side.
    wait_for(lambda: sim.stats()["open_sessions"] == 0, 5, "no other session on the router")
    with RouterClient(endpoint_for(sim)) as client:
        client.connect()
        assert sim.stats()["open_sessions"] == 1
        assert client.connected


def test_client_proplist_limits_returned_fields(sim: Simulator) -> None:
    with RouterClient(endpoint_for(sim)) as client:
        rows = client.call("/interface/print", queries=["?type=pppoe-in"], proplist=["name"])
    assert rows and all(set(row) == {"name"} for row in rows)
    assert {row["name"] for row in rows} == set(pppoe_interfaces(sim))


def test_client_stats_report_streams_and_counters(sim: Simulator) -> None:
    with RouterClient(endpoint_for(sim)) as client:
        stream = monitor(client, pppoe_interfaces(sim)[0])
        stats = client.stats()
        assert stats["open_streams"] == 1 and stats["connected"] is True
        for key in ("reconnects", "unknown_tag_sentences", "dropped", "last_error"):
            assert key in stats
        stream.cancel()


def test_client_closed_client_refuses_new_work(sim: Simulator) -> None:
    client = RouterClient(endpoint_for(sim))
    client.connect()
    client.close()
    client.close()  # idempotent
    with pytest.raises(UnreachableError, match="closed"):
        client.call("/system/identity/print")
    with pytest.raises(UnreachableError, match="closed"):
        client.connect()


def test_client_rejects_unknown_tls_mode() -> None:
    with pytest.raises(ValueError, match="tls_mode"):
        RouterEndpoint("10.0.0.1", tls=True, tls_mode="whatever")


def test_client_implements_every_configured_tls_mode() -> None:
    from routeros.connection import TLS_CONTEXTS
    from settings import TlsMode

    assert set(TLS_CONTEXTS) == {mode.value for mode in TlsMode}


def test_client_rejects_backoff_values_in_the_callers_thread() -> None:
    # Not in the supervisor thread, where a ValueError would only kill reconnection.
    with pytest.raises(ValueError):
        RouterClient(RouterEndpoint("10.0.0.1"), backoff_initial=0)
    with pytest.raises(ValueError):
        RouterClient(RouterEndpoint("10.0.0.1"), backoff_initial=5, backoff_max=1)
