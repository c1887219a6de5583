"""Data-layer fixtures: throw-away PostgreSQL schemas migrated to head (harness/pg.py), and a
simulator.

`pg_engine`, `pg_session` and `simulator`, each per test (`pg_url` is the root conftest's).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from models.db import make_engine, session_factory
from routeros.simulator import Simulator, SimulatorConfig
from tests.models.simulators import SIM_PASSWORD


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator(SimulatorConfig(pppoe=6, hotspot=3, static=3, seed=7, password=SIM_PASSWORD))
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=2, max_overflow=2)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def pg_session(pg_engine: Engine) -> Iterator[Session]:
    session = session_factory(pg_engine)()
    try:
        yield session
    finally:
        session.close()
