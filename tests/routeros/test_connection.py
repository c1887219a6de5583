"""Connecting and logging in: plain, legacy challenge, failures, API-SSL modes, secrecy."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.polling import wait_for
from routeros import LoginError, ProtocolError, RouterClient, RouterEndpoint, UnreachableError
from routeros.codec import encode_sentence
from routeros.connection import open_connection
from routeros.simulator import Simulator
from routeros.simulator.tls import generate_certificate
from tests.routeros.client_support import (
    data_of,
    endpoint_for,
    monitor,
    next_event,
    pppoe_interfaces,
    running_sim,
)
from tests.routeros.raw_router import RawRouter, Send, tag_of


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with running_sim() as s:
        yield s


@pytest.fixture(scope="module")
def tls_sim() -> Iterator[Simulator]:
    with running_sim(tls=True) as s:
        yield s


def ssl_port(sim: Simulator) -> int:
    assert sim.ssl_port is not None
    return sim.ssl_port


def ca_path(sim: Simulator) -> str:
    assert sim.cafile is not None
    return sim.cafile


def identity(client: RouterClient) -> str:
    return client.call("/system/identity/print")[0]["name"]


def test_connection_plain_login_then_call(sim: Simulator) -> None:
    with RouterClient(endpoint_for(sim)) as client:
        assert identity(client) == sim.customers()["router"]["identity"]


def test_connection_legacy_challenge_login_on_old_router() -> None:
    with running_sim(version="6.40") as old:
        with RouterClient(endpoint_for(old)) as client:
            assert identity(client)
        assert old.stats()["logins"] == 1


def test_connection_challenge_response_matches_manual_vector() -> None:
    # The manual's example (docs/routeros.md, Login): challenge 93b4..., user admin, empty password
    with RawRouter(lambda words, send: None, challenge="93b438ec9b80057c06dd9fe67d56aa9a") as router:
        conn = open_connection(RouterEndpoint("127.0.0.1", router.port, "admin", "", timeout=10))
        conn.close()
    assert router.logins[-1] == ["/login", "=name=admin", "=response=00e134102a9d330dd7b1849fedfea3cb57"]


def test_connection_wrong_password_raises_login_error_with_router_text(sim: Simulator) -> None:
    endpoint = endpoint_for(sim, password="not-the-password")
    with pytest.raises(LoginError) as info:
        RouterClient(endpoint).connect()
    assert "invalid user name or password" in info.value.message
    assert "not-the-password" not in str(info.value) + repr(info.value)
    assert sim.stats()["failed_logins"] >= 1


@pytest.mark.parametrize(
    "trap",
    [["!trap", "=message=no", "=extra=1"], ["!trap", "=category=1"]],
    ids=["unknown-attribute", "no-message"],
)
def test_connection_malformed_login_trap_is_a_protocol_error_the_client_survives(trap: list[str]) -> None:
    # A TypeError out of connect() got past the client's supervisor, which re-dials only
    # on RouterError: its thread died and the streams waited for ever.
    with RawRouter(lambda words, send: None) as router:
        router.login_reply = encode_sentence(trap) + encode_sentence(["!done"])
        with pytest.raises(ProtocolError, match="login to .* failed: TypeError"):
            RouterClient(RouterEndpoint("127.0.0.1", router.port, timeout=5)).connect()


def test_connection_legacy_wrong_password_raises_login_error() -> None:
    with running_sim(version="6.40") as old, pytest.raises(LoginError, match="cannot log in"):
        RouterClient(endpoint_for(old, password="wrong")).connect()


def test_connection_closed_port_raises_unreachable_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UnreachableError):
        RouterClient(RouterEndpoint("127.0.0.1", port, timeout=2)).connect()


def test_connection_tls_verify_with_sim_ca_succeeds(tls_sim: Simulator) -> None:
    endpoint = endpoint_for(tls_sim, port=ssl_port(tls_sim), tls=True, cafile=ca_path(tls_sim))
    with RouterClient(endpoint) as client:
        assert identity(client)


def test_connection_tls_verify_with_sim_ca_as_pem_text_succeeds(tls_sim: Simulator) -> None:
    pem = Path(ca_path(tls_sim)).read_text()
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    endpoint = endpoint_for(tls_sim, port=ssl_port(tls_sim), tls=True, cafile=pem)
    with RouterClient(endpoint) as client:
        assert identity(client)
    assert pem not in repr(endpoint)


@pytest.mark.parametrize("given_as", ["path", "pem"])
def test_connection_tls_verify_with_wrong_ca_is_refused_clearly(
    tls_sim: Simulator, tmp_path: Path, given_as: str
) -> None:
    # A valid CA, just not the one that signed this router's certificate.
    other_ca, _ = generate_certificate(str(tmp_path), ["127.0.0.1"])
    cafile = other_ca if given_as == "path" else Path(other_ca).read_text()
    endpoint = endpoint_for(tls_sim, port=ssl_port(tls_sim), tls=True, cafile=cafile)
    with pytest.raises(UnreachableError, match="TLS certificate of .* not trusted") as info:
        RouterClient(endpoint).connect()
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


@pytest.mark.parametrize(
    ("cafile", "says"),
    [
        ("/nonexistent/router-ca.pem", "cannot load the CA file '/nonexistent/router-ca.pem'"),
        ("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", "PEM text"),
    ],
)
def test_connection_tls_verify_with_unloadable_ca_says_which(
    tls_sim: Simulator, cafile: str, says: str
) -> None:
    endpoint = endpoint_for(tls_sim, port=ssl_port(tls_sim), tls=True, cafile=cafile)
    with pytest.raises(UnreachableError) as info:
        RouterClient(endpoint).connect()
    assert says in str(info.value)
    assert "not base64" not in str(info.value)  # PEM text is named, never echoed


def test_connection_tls_verify_without_ca_fails_cleanly(tls_sim: Simulator) -> None:
    endpoint = endpoint_for(tls_sim, port=ssl_port(tls_sim), tls=True)
    with pytest.raises(UnreachableError, match="TLS") as info:
        RouterClient(endpoint).connect()
    assert info.value.__cause__ is not None  # the ssl error is kept for debugging, not raised


def test_connection_tls_insecure_mode_accepts_self_signed(tls_sim: Simulator) -> None:
    endpoint = endpoint_for(tls_sim, port=ssl_port(tls_sim), tls=True, tls_mode="insecure")
    with RouterClient(endpoint) as client:
        assert identity(client)


def test_connection_tls_anon_dh_mode_talks_to_certless_router() -> None:
    with running_sim(tls=True, tls_mode="anon-dh") as anon:
        endpoint = endpoint_for(anon, port=ssl_port(anon), tls=True, tls_mode="anon-dh")
        with RouterClient(endpoint) as client:
            assert identity(client)


def test_connection_endpoint_repr_masks_password() -> None:
    endpoint = RouterEndpoint("10.0.0.1", password="hunter2-secret")
    assert "hunter2-secret" not in repr(endpoint)
    assert "hunter2-secret" not in repr(RouterClient(endpoint))


def test_connection_password_never_logged_even_with_root_at_debug(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    secret_endpoint = endpoint_for(sim, password="admin")
    logging.getLogger("librouteros").setLevel(logging.NOTSET)  # as a careless app might leave it
    with caplog.at_level(logging.DEBUG), RouterClient(secret_endpoint) as client:
        identity(client)
    assert logging.getLogger("librouteros").getEffectiveLevel() > logging.DEBUG
    assert not [r for r in caplog.records if "=password=" in r.getMessage()]


def test_connection_utf8_password_logs_in() -> None:
    with running_sim(password="pässwörd-ü") as utf8:
        with RouterClient(endpoint_for(utf8, password="pässwörd-ü")) as client:
            assert identity(client)


def test_connection_tls_carries_streams_and_calls_concurrently(tls_sim: Simulator) -> None:
    # reader and writers share one SSL object: every syscall on it is serialised
    endpoint = endpoint_for(tls_sim, port=ssl_port(tls_sim), tls=True, cafile=ca_path(tls_sim))
    names = pppoe_interfaces(tls_sim)
    with RouterClient(endpoint) as client:
        streams = [monitor(client, name, interval="0.05") for name in names]
        errors: list[BaseException] = []

        def caller() -> None:
            try:
                for _ in range(30):
                    assert client.call("/system/identity/print", proplist=["name"])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=caller) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        for stream, name in zip(streams, names):
            for _ in range(5):
                event, _ = next_event(stream, {"data"}, timeout=5)
                assert data_of(event)["name"] == name
        assert client.stats()["reconnects"] == 0


def test_connection_refused_over_session_limit_raises_unreachable() -> None:
    with running_sim(max_sessions=2) as small:
        with RouterClient(endpoint_for(small)), RouterClient(endpoint_for(small)):
            with pytest.raises(UnreachableError):
                RouterClient(endpoint_for(small)).connect()


def test_connection_slow_partial_sentence_is_not_cut_by_the_timeout() -> None:
    # librouteros alone would raise TimeoutError half-way through the sentence and lose sync
    def handler(words: list[str], send: Send) -> None:
        reply = encode_sentence(["!re", "=name=slow", f".tag={tag_of(words)}"])
        router.inject(reply[:7])
        time.sleep(1.5)  # the scenario: a gap longer than the endpoint timeout mid-sentence
        router.inject(reply[7:] + encode_sentence(["!done", f".tag={tag_of(words)}"]))

    with RawRouter(handler) as router:
        with RouterClient(RouterEndpoint("127.0.0.1", router.port, timeout=1.0), keepalive=5) as client:
            assert client.call("/system/identity/print", timeout=5) == [{"name": "slow"}]
            assert client.stats()["reconnects"] == 0


def test_connection_unresolvable_host_says_which_name_it_could_not_resolve() -> None:
    endpoint = RouterEndpoint("no-such-router.invalid", 8728, timeout=2, name="edge-7")
    with pytest.raises(UnreachableError) as caught:
        open_connection(endpoint)
    # The resolver's own words vary by system ("Name or service not known", "Temporary
    # failure in name resolution"); the name and the router are ours to give.
    assert str(caught.value).startswith("cannot resolve 'no-such-router.invalid' (edge-7): ")


def test_connection_cleartext_login_warns_once_per_router_never_for_api_ssl(
    tls_sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    # Names of their own: the warning is once per process, and other tests of this
    # process have logged in to other routers already.
    secret = "Clear-pw-9Zk!secret"
    run = uuid.uuid4().hex[:8]
    with running_sim(password=secret) as a, running_sim(password=secret) as b:
        plain_a = endpoint_for(a, password=secret, name=f"edge-a-{run}")
        plain_b = endpoint_for(b, password=secret, name=f"edge-b-{run}")
        ssl_endpoint = endpoint_for(
            tls_sim, port=ssl_port(tls_sim), tls=True, cafile=ca_path(tls_sim), name=f"edge-ssl-{run}"
        )
        with caplog.at_level(logging.INFO, logger="routeros"):
            # Router A: two connections, and one of them re-dials after the router drops it.
            with RouterClient(plain_a, backoff_max=0.2) as first, RouterClient(plain_a) as second:
                a.close_connections()
                wait_for(lambda: first.stats()["reconnects"] >= 1 and first.connected, 10, "a re-dial")
                assert identity(first) and identity(second)
            open_connection(plain_b).close()
            open_connection(plain_b).close()
            with RouterClient(ssl_endpoint) as over_ssl:
                assert identity(over_ssl)
    warnings = [r for r in caplog.records if "unencrypted" in r.getMessage()]
    messages = sorted(r.getMessage() for r in warnings)
    assert len(messages) == 2, messages
    for message, name, sim in zip(messages, ("edge-a", "edge-b"), (a, b)):
        assert message.startswith(f"router {name}-{run} (127.0.0.1:{sim.port}) "), message
        assert "port 8728" in message and "MIKROTIK_TLS=true" in message and "port 8729" in message
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert secret not in caplog.text
