"""The simulator child of `bench.engine`: its own process, so its CPU is not the worker's.

Protocol on stdin/stdout, one JSON line per answer:
- on start: {"port": P, "customers": <Simulator.customers()>}
- "stats"      -> Simulator.stats()
- "record on"  -> {"ok": true}; from now on every monitor-traffic sample written to a
  socket is logged as [interface, rx-bits-per-second, tx-bits-per-second, t] where t is
  time.time() right before the write of its cycle (the router-side send time)
- "record off" -> {"log": [...]} (and the log is cleared)
- "replies on" -> {"ok": true}; from now on every print's reply is logged as
  [command word, t], t = time.time() right before its write (bench/router.py: the
  router watch's cycle ends with its last print's reply)
- "replies off" -> {"log": [...]} (and that log is cleared)
- faults (bench/chaos.py), each answered {"ok": true, ...}: "drop-connections" (every
  API connection closed at once), "stall on" / "stall off" (the router stops answering,
  connections stay open), "drop-pppoe <username>" / "restore-pppoe <username>"
- "saturate <username> [seconds]" (download at the plan, until "unsaturate <username>"
  or for that many seconds) and "unsaturate <username>" (bench/alerts.py), each answered
  {"ok": true, "from": t}: t = the wall-clock time (time.time()) at which the change takes
  effect, the start of the next simulated second (Simulator.saturate)
- EOF on stdin: stop.

The log hooks wrap MonitorStream.emit (which interfaces got a sample this cycle),
ApiSession._handle (which command a reply answers) and ApiSession.send (the write of
that cycle's samples, or of that print's reply): one tuple per sample or reply, and
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
from routeros.simulator.router import RouterCore
from routeros.simulator.session import ApiSession

_recording = False
_pending: list[tuple[str, int, int]] = []
_log: list[tuple[str, int, int, float]] = []
_replies_on = False
_printing: str | None = None  # the print command being handled (its reply is being written)
_replies: list[tuple[str, float]] = []
_lock = threading.Lock()


def _install_hooks() -> None:
    emit, send, handle = MonitorStream.emit, ApiSession.send, ApiSession._handle

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
        if _printing is not None:
            with _lock:
                _replies.append((_printing, now))
        if _pending:
            with _lock:
                _log.extend((n, rx, tx, now) for n, rx, tx in _pending)
            _pending.clear()

    def logged_handle(self: ApiSession, words: list[str]) -> None:
        # A print answers at once, in one write (Simulator latency 0, as these benches run it).
        global _printing
        if _replies_on and words and words[0].endswith("/print"):
            _printing = words[0]
            try:
                handle(self, words)
            finally:
                _printing = None
        else:
            handle(self, words)

    MonitorStream.emit = logged_emit  # type: ignore[method-assign]  # the log hook, on purpose
    ApiSession.send = logged_send  # type: ignore[method-assign]  # the log hook, on purpose
    ApiSession._handle = logged_handle  # type: ignore[method-assign]  # the log hook, on purpose


def _saturate(sim: Simulator, username: str, seconds: float | None, on: bool) -> float:
    """Saturate (or not) from the next simulated second; when that second starts, by the
    wall clock. The simulated clock is the loop's own (model.now_ms), so it is read in the
    same call that changes the traffic: no second boundary can pass between the two."""

    def run(router: RouterCore) -> float:
        ms, wall = router.model.now_ms(), time.time()
        router.model.saturate(username, 1.0 if on else None, seconds if on else None)
        return wall + (1000 - ms % 1000) / 1000

    return sim._call(run)  # the public saturate() does the same without saying when


def main(argv: list[str] | None = None) -> int:
    global _recording, _replies_on
    parser = argparse.ArgumentParser()
    parser.add_argument("--pppoe", type=int, required=True)
    parser.add_argument("--hotspot", type=int, default=0)
    parser.add_argument("--static", type=int, default=0)
    parser.add_argument("--password-env", required=True)
    args = parser.parse_args(argv)
    _install_hooks()
    sim = Simulator(
        SimulatorConfig(
            pppoe=args.pppoe,
            hotspot=args.hotspot,
            static=args.static,
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
            elif command == "replies on":
                with _lock:
                    _replies.clear()
                _replies_on = True
                answer = {"ok": True}
            elif command == "replies off":
                _replies_on = False
                with _lock:
                    answer = {"log": list(_replies)}
                    _replies.clear()
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
            elif command.startswith(("saturate ", "unsaturate ")):
                word, username, *rest = command.split()
                try:
                    seconds = float(rest[0]) if rest else None
                    answer = {"ok": True, "from": _saturate(sim, username, seconds, word == "saturate")}
                except (KeyError, ValueError) as exc:
                    answer = {"error": str(exc)}
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
