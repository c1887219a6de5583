"""Text beyond ASCII (docs/routeros.md, Encodings): the simulator holds a router's bytes
(UTF-8, or the Winbox code page), the client reads UTF-8 first then the router's code
page, and writes in the router's encoding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routeros import ProtocolError, RouterClient, RouterEndpoint, TrapError
from routeros.simulator import Simulator, SimulatorConfig
from tests.routeros.client_support import endpoint_for, running_sim
from tests.routeros.wire import WireClient

NAMES = (("josé", "José Ñúñez"), ("Ñandú", "Ñandú Pérez"))


@pytest.fixture(scope="module", params=["utf-8", "cp1252"])
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    with running_sim(pppoe=1, hotspot=0, static=0, text_encoding=request.param, pppoe_names=NAMES) as s:
        yield s


def _raw_words(sim: Simulator, *command: str) -> list[bytes]:
    """Every word of the reply as the bytes that came off the socket."""
    with WireClient(sim.host, sim.port) as wire:
        wire.login()
        sentences = wire.command(*command)
    # The test codec decodes with surrogateescape: encoding back gives the bytes as sent.
    return [w.encode("utf-8", "surrogateescape") for s in sentences for w in s]


def test_encodings_simulator_sends_names_in_the_routers_bytes(sim: Simulator) -> None:
    encoding = sim.config.text_encoding
    words = _raw_words(sim, "/ppp/secret/print", "=.proplist=name,comment")
    for username, name in NAMES:
        assert b"=name=" + username.encode(encoding) in words
        assert b"=comment=" + name.encode(encoding) in words
    # The customers JSON (what a seed reads) always carries the names as text.
    shown = {c["username"]: c["name"] for c in sim.customers()["customers"]}
    assert all(shown[u] == n for u, n in NAMES)


def test_encodings_client_reads_names_of_either_router_exactly(sim: Simulator) -> None:
    # A client set to utf-8 reads a code-page router too: words that are not valid
    # UTF-8 are read in cp1252, nothing is dropped (librouteros alone would lose them).
    with RouterClient(endpoint_for(sim)) as client:
        rows = client.call("/ppp/secret/print", proplist=["name", "comment"])
    assert {(r["name"], r["comment"]) for r in rows} >= set(NAMES)


def test_encodings_client_writes_in_the_routers_encoding(sim: Simulator) -> None:
    encoding = sim.config.text_encoding
    with RouterClient(endpoint_for(sim, encoding=encoding)) as client:
        rows = client.call(
            "/interface/monitor-traffic", {"interface": "<pppoe-Ñandú>", "once": ""}, proplist=["name"]
        )
        assert rows == [{"name": "<pppoe-Ñandú>"}]
    if encoding != "utf-8":
        # Set to the wrong encoding, the name goes out as bytes the router does not hold.
        with RouterClient(endpoint_for(sim)) as client:
            with pytest.raises(TrapError, match="input does not match any value of interface"):
                client.call("/interface/monitor-traffic", {"interface": "<pppoe-Ñandú>", "once": ""})


def test_encodings_word_the_code_page_cannot_carry_is_refused_before_a_byte_is_sent() -> None:
    with running_sim(pppoe=1, hotspot=0, static=0, text_encoding="cp1252") as sim:
        with RouterClient(endpoint_for(sim, encoding="cp1252")) as client:
            with pytest.raises(ProtocolError, match="in cp1252"):
                client.call("/interface/monitor-traffic", {"interface": "<pppoe-日本>", "once": ""})
            assert client.call("/system/identity/print")  # the connection is still fine
            assert client.stats()["reconnects"] == 0


def test_encodings_endpoint_takes_utf8_or_a_code_page_by_its_codec_name() -> None:
    assert RouterEndpoint("h", encoding="Windows-1252").encoding == "cp1252"
    assert RouterEndpoint("h").encoding == "utf-8"
    for bad in ("utf-16", "no-such-encoding"):
        with pytest.raises(ValueError, match="encoding"):
            RouterEndpoint("h", encoding=bad)


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "cp1251"])
def test_encodings_codec_reads_utf8_first_and_loses_no_byte(encoding: str) -> None:
    codec = RouterEndpoint("h", encoding=encoding).codec
    assert "Ñandú".encode().decode(codec) == "Ñandú"  # valid UTF-8 always reads as UTF-8
    fallback = "cp1252" if encoding == "utf-8" else encoding
    raw = bytes(range(0x20, 0x100))  # not valid UTF-8: the code page, every byte kept
    text = raw.decode(codec)
    assert len(text) == len(raw)
    assert text[0x80 - 0x20 :].encode(fallback, "routeros_keep_bytes") == raw[0x80 - 0x20 :]
    # cp1252 leaves 0x81 undefined: it reads as U+0081 and goes back as the same byte.
    assert b"\x81".decode(RouterEndpoint("h", encoding="cp1252").codec) == "\x81"
    assert "\x81".encode(RouterEndpoint("h", encoding="cp1252").codec) == b"\x81"


def test_encodings_simulator_refuses_names_its_code_page_cannot_hold() -> None:
    with pytest.raises(ValueError, match="cannot be written in cp1252"):
        SimulatorConfig(text_encoding="cp1252", pppoe_names=(("日本", "Nihon"),))
    with pytest.raises(ValueError, match="text_encoding"):
        SimulatorConfig(text_encoding="utf-16")
