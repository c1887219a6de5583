"""A real HTTP webhook receiver in a thread: what the alert tests and bench/alerts.py
deliver to.

It dedupes by Idempotency-Key as the README asks receivers to, so a caller can tell
requests received (every attempt, each with its receipt time) from deliveries accepted
(each key once). It can fail its first requests (HTTP 500) or hang on them until released.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # when its body was read (epoch s)

    @property
    def key(self) -> str:
        return self.headers["Idempotency-Key"]

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.accepted: list[str] = []  # Idempotency-Keys, each once
        self.fail_next = 0  # answer this many requests with HTTP 500
        self.fail_all = False
        self.hang_next = 0  # hold this many requests until `release` is set (then 503)
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                got = Received(self.path, dict(self.headers.items()), body)
                with receiver._lock:
                    receiver.requests.append(got)
                    hang = receiver.hang_next > 0
                    receiver.hang_next -= 1 if hang else 0
                    fail = not hang and (receiver.fail_all or receiver.fail_next > 0)
                    receiver.fail_next -= 1 if fail and receiver.fail_next > 0 else 0
                    if not hang and not fail and got.key not in receiver.accepted:
                        receiver.accepted.append(got.key)
                if hang:
                    receiver.release.wait(60)
                self._answer(503 if hang else 500 if fail else 200)

            def _answer(self, status: int) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone (its timeout, or a killed worker)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def received(self, key: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if key is None or r.key == key]
