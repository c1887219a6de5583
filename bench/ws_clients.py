"""WebSocket clients of the benches, in a process of their own (`python -m bench.ws_clients`).

Dashboards read /ws from other machines; here they run in a child so their CPU is not
the web process's, nor the bench's that times REST calls. The first line on stdin is
the configuration, JSON:

    {"url": "ws://127.0.0.1:P/ws", "token": "...", "clients": [null, ["<uuid>", ...], ...]}

one client per item: null reads every customer, a list reads those customers
(`customer_id` filters), an object is the query itself (e.g. {"types": "top",
"router": "sim-1"}: a router's top frames). Every client reconnects by itself when its socket closes or
fails, with `last_id` = the id of the last entry it received (the resume the relay
promises), after 0.2 s doubling to 2 s. Every frame with an `id` is recorded as

    [client, id, type, customer_id, session_id, seq, rx_bits_per_second,
     tx_bits_per_second, receipt time.time()]

Then one JSON line answers each command line:
- "ready <timeout>"  -> {"connected": n} once every client is connected (or at timeout)
- "first <client> <customer> <session> <type> <timeout>" -> {"t": receipt time} of the
  first frame of that type for that session at that client, or {"t": null}
- "stats" -> per client: frames, traffic, reconnects, gaps, connected, last_id, closes
- "dump <path>" -> every record so far written to <path> as JSON (then forgotten)
EOF on stdin stops the clients.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

Record = list[Any]


@dataclass
class Client:
    index: int
    customers: list[str] | dict[str, str] | None
    frames: int = 0
    traffic: int = 0
    reconnects: int = 0
    gaps: int = 0
    connected: bool = False
    last_id: str | None = None
    closes: list[str] = field(default_factory=list)
    first: dict[tuple[str, str, str], float] = field(default_factory=dict)


class Clients:
    def __init__(self, url: str, token: str, filters: list[list[str] | dict[str, str] | None]) -> None:
        self.url = url
        self.token = token
        self.clients = [Client(i, f) for i, f in enumerate(filters)]
        self.records: list[Record] = []
        self.lock = threading.Lock()

    def _url(self, client: Client) -> str:
        params: list[tuple[str, str]] = []
        if isinstance(client.customers, dict):
            params.extend(client.customers.items())
        elif client.customers:
            params.append(("customer_id", ",".join(client.customers)))
        if client.last_id:
            params.append(("last_id", client.last_id))
        return f"{self.url}?{urlencode(params)}" if params else self.url

    async def run_client(self, client: Client) -> None:
        delay = 0.2
        protocols = [Subprotocol("monitor.v1")]
        if self.token:
            protocols.append(Subprotocol(f"bearer.{self.token}"))
        while True:
            try:
                async with connect(
                    self._url(client), subprotocols=protocols, max_size=2**22, max_queue=None, open_timeout=5
                ) as ws:
                    client.connected, delay = True, 0.2
                    async for message in ws:
                        self._on_frame(client, message)
            except asyncio.CancelledError:
                raise
            except ConnectionClosed as exc:
                client.closes.append(f"{exc.rcvd.code if exc.rcvd else 1006}")
            except (OSError, InvalidStatus, TimeoutError) as exc:
                client.closes.append(type(exc).__name__)
            client.connected = False
            client.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)

    def _on_frame(self, client: Client, message: str | bytes) -> None:
        now = time.time()
        frame = json.loads(message)
        kind = frame.get("type")
        entry_id = frame.get("id")
        if entry_id is None:
            if kind == "gap":
                client.gaps += 1
            return
        client.frames += 1
        client.last_id = entry_id
        customer = frame.get("customer_id", "")
        session = frame.get("session_id") or ""
        if kind == "traffic":
            client.traffic += 1
        key = (customer, session, kind)
        if key not in client.first:
            client.first[key] = now
        record = [
            client.index,
            entry_id,
            kind,
            customer,
            session,
            frame.get("seq"),
            frame.get("rx_bits_per_second"),
            frame.get("tx_bits_per_second"),
            now,
        ]
        with self.lock:
            self.records.append(record)

    # -- commands (stdin thread) ------------------------------------------------------

    def command(self, line: str) -> Any:
        words = line.split()
        if not words:
            return {"error": "empty command"}
        if words[0] == "ready":
            deadline = time.monotonic() + float(words[1])
            while time.monotonic() < deadline and not all(c.connected for c in self.clients):
                time.sleep(0.02)
            return {"connected": sum(c.connected for c in self.clients)}
        if words[0] == "first":
            index, customer, session, kind, timeout = words[1:6]
            client = self.clients[int(index)]
            deadline = time.monotonic() + float(timeout)
            while True:
                t = client.first.get((customer, session, kind))
                if t is not None or time.monotonic() >= deadline:
                    return {"t": t}
                time.sleep(0.002)
        if words[0] == "stats":
            return {
                "clients": [
                    {
                        "frames": c.frames,
                        "traffic": c.traffic,
                        "reconnects": c.reconnects,
                        "gaps": c.gaps,
                        "connected": c.connected,
                        "last_id": c.last_id,
                        "closes": c.closes[-10:],
                    }
                    for c in self.clients
                ]
            }
        if words[0] == "dump":
            with self.lock:
                records, self.records = self.records, []
            with open(words[1], "w") as out:
                json.dump(records, out)
            return {"count": len(records)}
        return {"error": f"unknown command {line!r}"}


def main() -> int:
    config = json.loads(sys.stdin.readline())
    clients = Clients(config["url"], config.get("token", ""), config["clients"])
    loop = asyncio.new_event_loop()
    tasks = [loop.create_task(clients.run_client(c)) for c in clients.clients]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    print(json.dumps({"clients": len(clients.clients)}), flush=True)
    try:
        for line in sys.stdin:
            print(json.dumps(clients.command(line.strip())), flush=True)
    finally:
        for task in tasks:
            loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
