"""CLI fixtures: `engine_factory` (from tests/tasks), real Celery workers, PostgreSQL,
Redis and the simulator, which the commands drive as an operator would."""

from __future__ import annotations

# Importing the engine's conftest first sets REDIS_URL & co. before Celery is configured.
from tests.tasks.conftest import engine_factory  # noqa: F401
