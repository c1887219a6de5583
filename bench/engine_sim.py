"""The simulator child of `bench.engine`: its own process, so its CPU is not the worker's.

Protocol on stdin/stdout, one JSON line per answer:
- on start: {"port": P, "customers": <Simulator.customers()>}
- "stats"      -> Simulator.stats()
- "record on"  -> {"ok": true}; from now on every monitor-traffic sample written to a
  socket is logged as [interface, rx-bits-per-second, tx-bits-per-second, t] where t is
  time.time() right before the write of its cycle (the router-side send time)
- "record off" -> {"log": [...]} (and the log is cleared)
- faults (bench/chaos.py), each answered {"ok": true, ...}: "drop-connections" (every
  API connection closed at once), "stall on" / "stall off" (the router stops answering,
  connections stay open), "drop-pppoe <username>" / "restore-pppoe <username>"
- EOF on stdin: stop.

The log hooks wrap MonitorStream.emit (which interfaces got a sample this cycle) and
ApiSession.send (the write of that cycle's samples): one tuple per sample, and
nothing at all while recording is off.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

from routeros.simulator import Simulator, SimulatorConfig
from routeros.simulator.commands import MonitorStream
from routeros.simulator.model import RouterModel
from routeros.simulator.session import ApiSession

_recording = False
_pending: list[tuple[str, int, int]] = []
_log: list[tuple[str, int, int, float]] = []
_lock = threading.Lock()


def _install_hooks() -> None:
    emit, send = MonitorStream.emit, ApiSession.send

    def logged_emit(
        self: MonitorStream, out: list[bytes], now: int, model: RouterModel, default_drop_mode: str
    ) -> None:
        before = len(out)
        emit(self, out, now, model, default_drop_mode)
        if _recording and len(out) > before:
            for name in self.names:
                iface = model.interfaces.get(name)
                if iface is not None:  # the rx and tx the row carried (Interface.monitor_words)
                    rx_bps, tx_bps, _, _ = iface.rates(now)
                    _pending.append((name, rx_bps, tx_bps))

    def logged_send(self: ApiSession, data: bytes) -> None:
        # Taken just before the write: one cycle of 1,000 samples is ~150 kB, and on
        # loopback the reader has the first samples before send() returns, so the
        # time after the write would be late by up to the write's duration.
        now = time.time()
        send(self, data)
        if _pending:
            with _lock:
                _log.extend((n, rx, tx, now) for n, rx, tx in _pending)
            _pending.clear()

    MonitorStream.emit = logged_emit  # type: ignore[method-assign]  # the log hook, on purpose
    ApiSession.send = logged_send  # type: ignore[method-assign]  # the log hook, on purpose


def main(argv: list[str] | None = None) -> int:
    global _recording
    parser = argparse.ArgumentParser()
    parser.add_argument("--pppoe", type=int, required=True)
    parser.add_argument("--password-env", required=True)
    args = parser.parse_args(argv)
    _install_hooks()
    sim = Simulator(
        SimulatorConfig(
            pppoe=args.pppoe,
            hotspot=0,
            static=0,
            seed=7,
            password=os.environ[args.password_env],
            max_sessions=20,
        )
    )
    sim.start()
    try:
        print(json.dumps({"port": sim.port, "customers": sim.customers()}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                answer: Any = sim.stats()
            elif command == "record on":
                with _lock:
                    _log.clear()
                _recording = True
                answer = {"ok": True}
            elif command == "record off":
                _recording = False
                with _lock:
                    answer = {"log": list(_log)}
                    _log.clear()
            elif command == "drop-connections":
                answer = {"ok": True, "closed": sim.close_connections()}
            elif command in ("stall on", "stall off"):
                sim.stall(command == "stall on")
                answer = {"ok": True}
            elif command.startswith("drop-pppoe "):
                sim.drop_pppoe(command.split(" ", 1)[1])
                answer = {"ok": True}
            elif command.startswith("restore-pppoe "):
                sim.restore_pppoe(command.split(" ", 1)[1])
                answer = {"ok": True}
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
