"""Connections: max-sessions, garbage isolation, API-SSL, counters."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Iterator

import librouteros
import pytest

from harness.polling import wait_for
from routeros.simulator import Simulator, SimulatorConfig
from tests.routeros.wire import WireClient, attrs, tag_of

logging.getLogger("librouteros").setLevel(logging.INFO)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(pppoe=3, hotspot=0, static=0)) as s:
        yield s


def ssl_port(sim: Simulator) -> int:
    assert sim.ssl_port is not None, "started without tls"
    return sim.ssl_port


def first_pppoe(sim: Simulator) -> str:
    return next(c["target"] for c in sim.customers()["customers"] if c["service_type"] == "pppoe")


def test_sessions_21st_connection_is_closed_without_a_byte(sim: Simulator) -> None:
    clients = [WireClient(sim.host, sim.port) for _ in range(20)]
    try:
        for c in clients:
            assert c.login() == [["!done"]]
        with WireClient(sim.host, sim.port) as extra:
            assert extra.wait_closed()
            assert extra.read(0) is None
        stats = sim.stats()
        assert stats["open_sessions"] == 20 and stats["refused_connections"] == 1
        # The 20 admitted sessions are unaffected.
        assert clients[0].command("/system/identity/print")[-1] == ["!done"]
        clients.pop().close()
        wait_for(lambda: sim.stats()["open_sessions"] == 19, 5, "the closed session to be released")
        with WireClient(sim.host, sim.port) as again:
            assert again.login() == [["!done"]]
    finally:
        for c in clients:
            c.close()


def test_sessions_over_limit_fatal_option_sends_fatal() -> None:
    with (
        Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0, max_sessions=1, over_limit="fatal")) as sim,
        WireClient(sim.host, sim.port) as first,
        WireClient(sim.host, sim.port) as second,
    ):
        assert second.read() == ["!fatal", "too many sessions"]
        assert second.wait_closed()
        assert first.login() == [["!done"]]


def test_sessions_over_limit_reset_option_resets() -> None:
    with (
        Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0, max_sessions=1, over_limit="reset")) as sim,
        WireClient(sim.host, sim.port) as first,
    ):
        try:
            second = WireClient(sim.host, sim.port)
        except ConnectionResetError:
            pass  # the RST can beat the client's connect() to the finish line
        else:
            with second:
                assert second.wait_closed()
        assert first.login() == [["!done"]]
        assert sim.stats()["refused_connections"] == 1


def test_sessions_garbage_bytes_close_only_the_offending_connection(sim: Simulator) -> None:
    name = first_pppoe(sim)
    with WireClient(sim.host, sim.port) as good, WireClient(sim.host, sim.port) as bad:
        good.login()
        bad.login()
        good.send("/interface/monitor-traffic", f"=interface={name}", "=interval=0.1", ".tag=g")
        assert good.next_sentence()[0] == "!re"
        bad.send_raw(b"\x05/quit\xff\xfe\xfd garbage")
        assert bad.wait_closed()
        for _ in range(3):  # the good stream keeps flowing
            s = good.read()
            assert s is not None and s[0] == "!re" and tag_of(s) == "g"
        wait_for(lambda: sim.stats()["open_sessions"] == 1, 5, "the bad session to be released")


def test_sessions_tls_with_generated_ca_verifies_and_serves() -> None:
    with Simulator(SimulatorConfig(pppoe=2, hotspot=0, static=0, tls=True)) as sim:
        assert sim.cafile and sim.ssl_port
        ctx = ssl.create_default_context(cafile=sim.cafile)
        with WireClient(sim.host, sim.ssl_port, ssl_context=ctx, server_hostname="127.0.0.1") as c:
            assert c.login() == [["!done"]]
            assert c.command("/system/identity/print")[0] == ["!re", "=name=sim-router"]
        wrapper = functools.partial(ctx.wrap_socket, server_hostname="localhost")
        api = librouteros.connect(
            host=sim.host,
            port=sim.ssl_port,
            username="admin",
            password="admin",
            ssl_wrapper=wrapper,
            timeout=5,
        )
        try:
            assert list(api.path("system", "identity")) == [{"name": "sim-router"}]
        finally:
            api.close()


def test_sessions_tls_without_trusting_the_ca_fails_verification() -> None:
    with Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0, tls=True)) as sim:
        ctx = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            WireClient(sim.host, ssl_port(sim), ssl_context=ctx, server_hostname="127.0.0.1")


def test_sessions_tls_anonymous_dh_mode() -> None:
    with Simulator(SimulatorConfig(pppoe=1, hotspot=0, static=0, tls=True, tls_mode="anon-dh")) as sim:
        assert sim.cafile is None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("ADH:@SECLEVEL=0")
        with WireClient(sim.host, ssl_port(sim), ssl_context=ctx) as c:
            assert c.login() == [["!done"]]
            assert isinstance(c.sock, ssl.SSLSocket)
            cipher = c.sock.cipher()
            assert cipher is not None and "ADH" in cipher[0]


def test_sessions_stats_count_logins_sessions_and_commands(sim: Simulator) -> None:
    name = first_pppoe(sim)
    with WireClient(sim.host, sim.port) as c:
        c.login()
        for i in range(3):
            c.send("/interface/monitor-traffic", f"=interface={name}", f".tag={i}")
        c.command("/system/identity/print")
        wait_for(lambda: sim.stats()["running_commands"] == 3, 5, "3 running commands")
        stats = sim.stats()
        assert stats["logins"] == 1
        assert stats["open_sessions"] == 1
        assert stats["commands_total"] == 4
        assert stats["commands_per_second"] > 0
        assert stats["monitor_streams"] == 3
        c.command("/cancel")
        wait_for(lambda: sim.stats()["running_commands"] == 0, 5, "streams to end")
    wait_for(lambda: sim.stats()["open_sessions"] == 0, 5, "the session to close")


def test_sessions_many_streams_on_one_connection_each_get_their_own_interface() -> None:
    with (
        Simulator(SimulatorConfig(pppoe=200, hotspot=0, static=0)) as sim,
        WireClient(sim.host, sim.port) as c,
    ):
        c.login()
        names = [
            attrs(r)["name"]
            for r in c.command("/interface/print", "?type=pppoe-in", "=.proplist=name")
            if r[0] == "!re"
        ]
        assert len(names) == 200
        for i, n in enumerate(names):
            c.send(
                "/interface/monitor-traffic",
                f"=interface={n}",
                "=interval=0.2",
                "=.proplist=name,rx-bits-per-second,tx-bits-per-second",
                f".tag=t{i}",
            )
        counts: dict[str, int] = {}

        def all_twice(s: list[str]) -> bool:
            tag = tag_of(s)
            assert s[0] == "!re" and tag is not None and attrs(s)["name"] == names[int(tag[1:])]
            counts[tag] = counts.get(tag, 0) + 1
            return len(counts) == 200 and min(counts.values()) >= 2

        c.read_until(all_twice, timeout=10)
        c.command("/cancel", timeout=10)
