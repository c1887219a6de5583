"""Simulator: the public, thread-safe handle around the asyncio router.

The router runs on its own event loop in a daemon thread, so synchronous tests and
benchmarks can drive it; every hook below is marshalled onto that loop and waits for it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .commands import command_key
from .config import DROP_MODES, SimulatorConfig
from .listeners import Listener
from .model import MONITOR_FIELDS
from .router import RouterCore
from .session import ApiSession
from .tls import generate_certificate, server_context

__all__ = ["Simulator"]

T = TypeVar("T")
_HOOK_TIMEOUT = 30.0


class Simulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.config.validate()
        for command in self.config.denied_commands:
            command_key(command)  # ValueError now rather than from the event loop
        self.host = self.config.host
        self.port: int = 0
        self.ssl_port: int | None = None
        self.cafile: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._router: RouterCore | None = None
        self._tmpdir: str | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.new_event_loop()
        started = threading.Event()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="routeros-simulator", daemon=True)
        self._thread.start()
        started.wait()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), loop).result(_HOOK_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> None:
        cfg = self.config
        self._router = router = RouterCore(cfg)
        router.listeners["api"] = api = Listener(lambda: ApiSession(router, "api"), cfg.host, cfg.port)
        await api.start()
        self.port = api.port
        if cfg.tls:
            self._tmpdir = cfg.cert_dir or tempfile.mkdtemp(prefix="routeros-sim-")
            cert = key = None
            if cfg.tls_mode == "cert":
                cert, key = generate_certificate(self._tmpdir, [cfg.host, "127.0.0.1"])
                self.cafile = cert
            ctx = server_context(cfg.tls_mode, self._tmpdir, cert, key)
            router.listeners["api-ssl"] = tls = Listener(
                lambda: ApiSession(router, "api-ssl"), cfg.host, cfg.ssl_port, ctx
            )
            await tls.start()
            self.ssl_port = tls.port

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), loop).result(_HOOK_TIMEOUT)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(_HOOK_TIMEOUT)
        loop.close()
        self._loop = None
        self._thread = None
        if self._tmpdir and not self.config.cert_dir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    async def _stop(self) -> None:
        if self._router is not None:
            self._router.close_listeners()
            for session in self._router.all_sessions():
                session.close(abort=True)

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- marshalling ----------------------------------------------------------------------

    def _call(self, fn: Callable[[RouterCore], T]) -> T:
        loop, router = self._loop, self._router
        if loop is None or router is None:
            raise RuntimeError("simulator is not running")

        async def run() -> T:
            return fn(router)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(_HOOK_TIMEOUT)

    def _await(self, fn: Callable[[RouterCore], Coroutine[Any, Any, T]]) -> T:
        loop, router = self._loop, self._router
        if loop is None or router is None:
            raise RuntimeError("simulator is not running")
        return asyncio.run_coroutine_threadsafe(fn(router), loop).result(_HOOK_TIMEOUT)

    # ---- observation ----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self._call(lambda r: r.stats())

    def command_counts(self) -> dict[str, int]:
        """Commands received since the start or the last reset, by command word as the
        client sent it: {"/interface/print": 12, "/cancel": 1, ...}. Logins before
        success are not counted; everything after is, whether it succeeds or not."""
        return self._call(lambda r: dict(r.command_counts))

    def reset_command_counts(self) -> dict[str, int]:
        """Start counting afresh; returns the counts up to now (read and reset at once, so
        no command falls between them). stats()["commands_total"] keeps running."""

        def run(r: RouterCore) -> dict[str, int]:
            counts = dict(r.command_counts)
            r.command_counts.clear()
            return counts

        return self._call(run)

    def customers(self) -> dict[str, Any]:
        host = self.config.advertise_host or (
            "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        )
        return self._call(lambda r: r.model.customers_json(host, self.port, self.ssl_port))

    def write_customers_json(self, path: str) -> None:
        data = self.customers()
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")

    # ---- faults ---------------------------------------------------------------------------

    def drop_pppoe(self, username: str, mode: str | None = None) -> None:
        """The PPPoE session of username ends: /ppp/active entry, <pppoe-…> interface and queue vanish.

        mode decides what a running monitor-traffic on that interface sees (config.drop_mode by default).
        """
        if mode is not None and mode not in DROP_MODES:
            raise ValueError(f"mode must be one of {', '.join(DROP_MODES)}")

        def run(r: RouterCore) -> None:
            effective = mode or r.config.drop_mode
            iface = r.model.interfaces.get(r.model.target_of(r.model.pppoe_customer(username)))
            r.model.drop_pppoe(username, effective)
            if iface is not None:
                for s in r.all_sessions():
                    s.interface_removed(iface.id, effective, r.config.drop_trap_message)

        self._call(run)

    def restore_pppoe(self, username: str) -> None:
        """The customer dials in again: new session and interface, counters from zero."""
        self._call(lambda r: r.model.restore_pppoe(username))

    def drop_hotspot(self, username: str) -> None:
        """The hotspot user logs out: its /ip/hotspot/active entry and dynamic queue vanish
        (a listen sees `.dead`). KeyError for a user who is not a hotspot customer."""
        self._call(lambda r: r.model.drop_hotspot(username))

    def restore_hotspot(self, username: str) -> None:
        """The hotspot user logs in again: a new entry (new `.id`) and queue, counters from zero."""
        self._call(lambda r: r.model.restore_hotspot(username))

    def saturate(self, username: str, fraction: float = 1.0, seconds: float | None = None) -> None:
        """Drive the customer to its plan: from the next second its download runs at about
        ``fraction`` of the package (upload carries the acknowledgements), for ``seconds``
        or until unsaturate(). monitor-traffic, the counters, the queue and the ping RTT
        (bufferbloat) all follow, as for any traffic. KeyError for an unknown username."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        self._call(lambda r: r.model.saturate(username, fraction, seconds))

    def unsaturate(self, username: str) -> None:
        """The customer's traffic goes back to its own pattern from the next second."""
        self._call(lambda r: r.model.saturate(username, None, None))

    def inject_monitor_values(self, interface: str, field: str, *values: str) -> None:
        """The next monitor-traffic rows of ``interface`` carry these values of ``field``, one
        row each and in order, on whichever stream sends them: what a router with a corrupt
        counter might send (a rate of 400 digits, ``nan``, ``-1``). The rows after them are
        normal again. The field appears only in rows whose ``.proplist`` asks for it.
        """
        if field not in MONITOR_FIELDS[1:]:
            raise ValueError(f"field must be a monitor-traffic value, one of {', '.join(MONITOR_FIELDS[1:])}")
        self._call(lambda r: r.model.inject(interface, field, values))

    def close_connections(self) -> int:
        """Close every API connection (FIN, no !fatal); returns how many were closed."""

        def run(r: RouterCore) -> int:
            sessions = r.all_sessions()
            for s in sessions:
                s.close()
            return len(sessions)

        return self._call(run)

    def send_fatal(self, reason: str = "session terminated on request") -> int:
        """`!fatal <reason>` on every connection, then close them; returns how many."""

        def run(r: RouterCore) -> int:
            sessions = r.all_sessions()
            for s in sessions:
                s.fatal(reason)
            return len(sessions)

        return self._call(run)

    def stall(self, on: bool) -> None:
        """While on, the router sends nothing and reads nothing (no FIN either), like a hung box.

        Input that arrives meanwhile is processed when the stall ends; stream cycles that fall
        inside the stall are lost, as on a router that missed them.
        """

        def run(r: RouterCore) -> None:
            r.stalled = on
            if not on:
                for s in r.all_sessions():
                    s.resume_input()

        self._call(run)

    def set_latency(self, seconds: float) -> None:
        """Delay every reply by seconds (0 turns it off); order is preserved."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")

        def run(r: RouterCore) -> None:
            r.latency = seconds

        self._call(run)

    # ---- refusals: permissions, logins, connections, max-sessions ---------------------------

    def deny_commands(self, *commands: str) -> None:
        """From now on these commands get `!trap =message=not enough permissions (9)` + `!done`,
        as for an API user whose group lacks the policy; no arguments allows everything again.
        Replaces SimulatorConfig.denied_commands; commands already running are not touched.
        """
        keys = {command_key(c) for c in commands}  # ValueError here, in the caller's thread

        def run(r: RouterCore) -> None:
            r.denied = keys

        self._call(run)

    def refuse_logins(self, on: bool) -> None:
        """While on, every new login fails with the router's failed-login reply (a disabled
        user, a router still booting); logged-in sessions carry on."""

        def run(r: RouterCore) -> None:
            r.refusing_logins = on

        self._call(run)

    def refuse_connections(self, on: bool) -> None:
        """While on, the API ports are closed: a new connection is refused, as while the router
        reboots. Open sessions are untouched (close_connections() drops them too). Turning it
        off binds the same ports again before returning."""

        async def run(r: RouterCore) -> None:
            r.refusing_connections = on
            if on:
                r.sync_listeners()
            else:
                await r.reopen_listeners()

        self._await(run)

    def hold_foreign_sessions(self, count: int, service: str = "api") -> None:
        """Hold ``count`` sessions of "other tools" on ``service``: they use up max-sessions
        like real ones (see over_limit) but send nothing. 0 releases them."""
        if count < 0:
            raise ValueError("count must be >= 0")
        if service not in ("api", "api-ssl"):
            raise ValueError("service must be api or api-ssl")

        def run(r: RouterCore) -> None:
            r.foreign_sessions[service] = count
            r.sync_listeners()

        self._call(run)
