"""Data-layer fixtures: a migrated throw-away PostgreSQL schema per test, and a simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routeros.simulator import Simulator, SimulatorConfig
from tests.pg import pg_engine, pg_session, pg_url  # noqa: F401  (fixtures)

SIM_PASSWORD = "sim-Pa55-word"


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(pppoe=6, hotspot=3, static=3, seed=7, password=SIM_PASSWORD))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
