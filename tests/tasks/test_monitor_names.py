"""Names beyond ASCII, from the router to the stream: imported by models.importer from
a simulated router, started, sampled. Real worker, beat and simulators.

RouterOS keeps the bytes it was given (docs/routeros.md, Encodings): a router whose
names came over the API holds UTF-8; one whose names were typed in Winbox on a
Western European Windows holds cp1252. The client reads UTF-8 when a word is valid
UTF-8, else the router's code page, and writes in the router's encoding
(`routers.encoding`), so the interface name it sends back is the router's own bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from harness.seed import ROUTER_PASSWORD
from models import Customer
from models.importer import main as import_main
from routeros.simulator import Simulator, SimulatorConfig
from tasks import service, sessions
from tests.tasks.engine import Engine
from tests.tasks.monitors import start_monitor
from tests.tasks.rows import add_router
from tests.tasks.streams import matches, wait_entry

NAMES = (("josé", "José Ñúñez"), ("Ñandú", "Ñandú Pérez"))


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=2, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=8)
    eng.start_worker("default", concurrency=2)
    eng.start_beat()
    yield eng


@pytest.fixture(scope="module")
def routers(engine: Engine) -> Iterator[dict[str, Simulator]]:
    """Router id -> a simulated router holding NAMES in that router's text encoding."""
    sims: dict[str, Simulator] = {}
    try:
        for router_id, encoding in (("names-utf8", "utf-8"), ("names-cp1252", "cp1252")):
            sim = Simulator(
                SimulatorConfig(
                    pppoe=1,
                    hotspot=0,
                    static=0,
                    seed=11,
                    password=ROUTER_PASSWORD,
                    text_encoding=encoding,
                    pppoe_names=NAMES,
                )
            )
            sim.start()
            sims[router_id] = sim
            add_router(router_id, sim.port, username="admin", encoding=encoding)
        yield sims
    finally:
        for sim in sims.values():
            sim.stop()


def _imported(router_id: str) -> dict[str, Customer]:
    with sessions.db() as s:
        return {c.username: c for c in s.scalars(select(Customer).where(Customer.mikrotik_id == router_id))}


@pytest.mark.parametrize("router_id", ["names-utf8", "names-cp1252"])
def test_monitor_names_beyond_ascii_imported_started_and_sampled(
    engine: Engine, routers: dict[str, Simulator], router_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_main(["--router", router_id, "--database-url", engine.env["DATABASE_URL"]]) == 0
    assert "customers: created=3" in capsys.readouterr().out
    customers = _imported(router_id)
    for username, name in NAMES:
        assert username in customers, sorted(customers)
        assert customers[username].name == name  # the PPP secret's comment
        assert customers[username].pppoe_username == username
    for username, name in NAMES:
        cid = str(customers[username].id)
        running = start_monitor(engine, cid, requested_by="names-test", timeout=5.0)
        sample = running.first
        assert (sample["username"], sample["customer_name"]) == (username, name)
        assert sample["interface"] == f"<pppoe-{username}>"
        assert sample["router"] == router_id
        assert int(sample["download_bps"]) > 0
        service.stop(cid, requested_by="names-test")
        wait_entry(engine.redis, cid, matches(type="stopped", session_id=running.session_id), 5.0, "stopped")


def test_monitor_names_code_page_router_set_to_utf8_says_why_it_cannot_monitor(
    engine: Engine, routers: dict[str, Simulator]
) -> None:
    """A cp1252 router whose row says utf-8: the names still import (read as cp1252
    when not UTF-8), but the interface name goes out in UTF-8, which the router does
    not hold: `offline` with the router's own words, until the row is corrected."""
    sim = routers["names-cp1252"]
    add_router("names-misset", sim.port, username="admin", encoding="utf-8")
    assert import_main(["--router", "names-misset", "--database-url", engine.env["DATABASE_URL"]]) == 0
    customer = _imported("names-misset")["Ñandú"]
    assert customer.name == "Ñandú Pérez"
    cid = str(customer.id)
    info = service.start(cid, requested_by="names-test")
    offline = wait_entry(
        engine.redis, cid, matches(type="offline", session_id=info.session_id), 5.0, "offline"
    )
    assert offline["reason"] == "input does not match any value of interface"
    service.stop(cid, requested_by="names-test")
    wait_entry(engine.redis, cid, matches(type="stopped", session_id=info.session_id), 5.0, "stopped")
