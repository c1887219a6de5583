"""Router-wide state on the event-loop thread: model, sessions, counters, fault switches."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from .config import SimulatorConfig
from .model import RouterModel

if TYPE_CHECKING:
    from .session import ApiSession

__all__ = ["RouterCore"]

_RATE_WINDOW = 5.0  # seconds over which commands_per_second is averaged


class RouterCore:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.model = RouterModel(config)
        self.empty_replies = config.version_tuple >= (7, 18, 0)
        self.sessions: dict[str, set[ApiSession]] = {"api": set(), "api-ssl": set()}
        self.latency = config.latency
        self.stalled = False
        self.logins = 0
        self.failed_logins = 0
        self.commands_total = 0
        self.refused_connections = 0
        self.bytes_sent = 0
        self.skipped_cycles = 0  # stream cycles not sent because a client was not reading
        self._command_times: deque[float] = deque()

    def count_command(self) -> None:
        self.commands_total += 1
        now = time.monotonic()
        times = self._command_times
        times.append(now)
        # Bounded by the window: old entries leave as new ones arrive.
        limit = now - _RATE_WINDOW
        while times[0] < limit:
            times.popleft()

    def all_sessions(self) -> list[ApiSession]:
        return [s for group in self.sessions.values() for s in group]

    def stats(self) -> dict[str, float | int | dict[str, int]]:
        now = time.monotonic()
        limit = now - _RATE_WINDOW
        recent = sum(1 for t in self._command_times if t >= limit)
        sessions = self.all_sessions()
        running = sum(len(s.running) for s in sessions)
        streams = sum(1 for s in sessions for c in s.running.values() if c.kind == "monitor")
        return {
            "logins": self.logins,
            "failed_logins": self.failed_logins,
            "open_sessions": len(sessions),
            "sessions_by_service": {k: len(v) for k, v in self.sessions.items()},
            "running_commands": running,
            "monitor_streams": streams,
            "commands_total": self.commands_total,
            "commands_per_second": round(recent / _RATE_WINDOW, 2),
            "refused_connections": self.refused_connections,
            "bytes_sent": self.bytes_sent,
            "skipped_cycles": self.skipped_cycles,
        }
