"""web/state.py: what the lifespan opens; the routes and the service share one engine."""

from __future__ import annotations

import anyio
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from settings import get_settings
from tasks import sessions
from tests.web.webdb import WebDb
from web.metrics import WebMetrics
from web.state import open_state
from web.throttle import AuthThrottle


def test_state_routes_and_service_calls_share_the_process_engine(web_db: WebDb) -> None:
    settings = get_settings()

    async def binds() -> tuple[Engine, object, object]:
        async with open_state(settings, WebMetrics(), AuthThrottle(1, 1.0)) as state:
            with state.db() as route_session:
                route = route_session.get_bind()
            with sessions.db() as service_session:
                service = service_session.get_bind()
            return state.engine, route, service

    engine, route, service = anyio.run(binds)
    assert route is engine and service is engine
    assert isinstance(engine.pool, QueuePool) and engine.pool.size() == settings.db_max_idle_conns
