"""Router-wide state on the event-loop thread: model, sessions, counters, fault switches."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from typing import TYPE_CHECKING

from .commands import command_key
from .config import SimulatorConfig
from .listeners import Listener
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
        # Sessions held by "other tools" (Winbox scripts, monitoring...): they count
        # against max-sessions like ours but send nothing.
        self.foreign_sessions: dict[str, int] = {"api": 0, "api-ssl": 0}
        self.listeners: dict[str, Listener] = {}  # filled by the Simulator
        self.latency = config.latency
        self.stalled = False
        self.refusing_logins = False
        self.refusing_connections = False
        self.shut_down = False
        self.denied: set[tuple[str, str]] = {command_key(c) for c in config.denied_commands}
        self._reopening: set[asyncio.Task[None]] = set()
        self._bind_lock = asyncio.Lock()
        self.logins = 0
        self.failed_logins = 0
        self.commands_total = 0
        # Commands received after login, by command word as sent ("/interface/print"):
        # what a client costs the router (Simulator.command_counts).
        self.command_counts: Counter[str] = Counter()
        self.refused_connections = 0
        self.denied_commands = 0  # answered "not enough permissions"
        self.bytes_sent = 0
        self.skipped_cycles = 0  # stream cycles not sent because a client was not reading
        self._command_times: deque[float] = deque()

    def count_command(self, word: str) -> None:
        self.commands_total += 1
        self.command_counts[word] += 1
        now = time.monotonic()
        times = self._command_times
        times.append(now)
        # Bounded by the window: old entries leave as new ones arrive.
        limit = now - _RATE_WINDOW
        while times[0] < limit:
            times.popleft()

    def table(self, menu: str, ms: int | None = None) -> list[dict[str, str]]:
        """A menu's rows at ``ms`` (now by default): the model's, or those that describe
        the API service itself."""
        if menu == "ip/service":
            return self._services()
        if menu == "user/active":
            return self._active_users()
        return self.model.rows(menu, ms)

    def _services(self) -> list[dict[str, str]]:
        # The two services we serve, as /ip/service prints them (docs/routeros.md,
        # Services and max-sessions); the others exist on a router but stay disabled here.
        rows = []
        for i, (name, default_port) in enumerate((("api", 8728), ("api-ssl", 8729))):
            listener = self.listeners.get(name)
            row = {
                ".id": f"*{i + 7:X}",
                "name": name,
                "port": str(listener.port if listener is not None else default_port),
                "address": "",
                "disabled": "false" if listener is not None else "true",
                "invalid": "false",
            }
            if self.config.version_tuple >= (7, 16, 0):
                row["max-sessions"] = str(self.config.max_sessions)
            if name == "api-ssl":
                row["certificate"] = "sim-cert" if listener is not None else "none"
                row["tls-version"] = "any"
            rows.append(row)
        return rows

    def _active_users(self) -> list[dict[str, str]]:
        # Every API login shows up here (docs/routeros.md, Services and max-sessions).
        rows = []
        n = 0
        for service, sessions in self.sessions.items():
            for session in sessions:
                if not session.logged_in:
                    continue
                n += 1
                rows.append(self._active_row(n, service, session.peer_address))
            for _ in range(self.foreign_sessions[service]):
                n += 1
                rows.append(self._active_row(n, service, "192.0.2.10"))
        return rows

    def _active_row(self, n: int, service: str, address: str) -> dict[str, str]:
        return {
            ".id": f"*{n:X}",
            "when": "2026-11-26 10:00:00" if self.model.v7 else "nov/26/2026 10:00:00",
            "name": self.config.user,
            "address": address,
            "via": service,
            "group": "full",
            "radius": "false",
        }

    def full(self, service: str) -> bool:
        """max-sessions reached for this service (ours and foreign ones together)."""
        return len(self.sessions[service]) + self.foreign_sessions[service] >= self.config.max_sessions

    def listener_wanted(self, service: str) -> bool:
        if self.shut_down or self.refusing_connections:
            return False
        return not (self.config.over_limit == "refuse" and self.full(service))

    def sync_listeners(self) -> None:
        """Close now every listener that must be closed; re-open the others in a task.

        Called whenever sessions come or go, so that over_limit "refuse" follows the count.
        """
        self._close_unwanted()
        if any(self.listener_wanted(s) and not listener.is_open for s, listener in self.listeners.items()):
            task = asyncio.get_running_loop().create_task(self.reopen_listeners())
            self._reopening.add(task)
            task.add_done_callback(self._reopening.discard)

    async def reopen_listeners(self) -> None:
        """Open every listener that is wanted; raises OSError if a port cannot be bound again."""
        async with self._bind_lock:  # one bind at a time: two would collide on the port
            while pending := [
                listener
                for service, listener in self.listeners.items()
                if self.listener_wanted(service) and not listener.is_open
            ]:
                for listener in pending:
                    await listener.start()
                self._close_unwanted()  # things may have changed while a bind was awaited

    def _close_unwanted(self) -> None:
        for service, listener in self.listeners.items():
            if listener.is_open and not self.listener_wanted(service):
                listener.stop()

    def close_listeners(self) -> None:
        """For good: the simulator is stopping (sessions closing later must not re-open them)."""
        self.shut_down = True
        for task in list(self._reopening):
            task.cancel()
        for listener in self.listeners.values():
            listener.stop()

    def all_sessions(self) -> list[ApiSession]:
        return [s for group in self.sessions.values() for s in group]

    def stats(self) -> dict[str, float | int | dict[str, int]]:
        now = time.monotonic()
        limit = now - _RATE_WINDOW
        recent = sum(1 for t in self._command_times if t >= limit)
        sessions = self.all_sessions()
        running = sum(len(s.running) for s in sessions)
        streams = sum(1 for s in sessions for c in s.running.values() if c.kind == "monitor")
        pings = sum(1 for s in sessions for c in s.running.values() if c.kind == "ping")
        return {
            "logins": self.logins,
            "failed_logins": self.failed_logins,
            "open_sessions": len(sessions),
            "sessions_by_service": {k: len(v) for k, v in self.sessions.items()},
            "foreign_sessions": dict(self.foreign_sessions),
            "running_commands": running,
            "monitor_streams": streams,
            "ping_streams": pings,
            "commands_total": self.commands_total,
            "command_counts": dict(self.command_counts),
            "commands_per_second": round(recent / _RATE_WINDOW, 2),
            "refused_connections": self.refused_connections,
            "denied_commands": self.denied_commands,
            "bytes_sent": self.bytes_sent,
            "skipped_cycles": self.skipped_cycles,
        }
