"""A raw-socket API client built on routeros.codec, for wire-level simulator tests."""

from __future__ import annotations

import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence

from routeros.codec import SentenceDecoder, encode_sentence


class WireClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            try:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.timeout = timeout
        self.decoder = SentenceDecoder()
        self.pending: deque[list[str]] = deque()
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, *words: str) -> None:
        self.sock.sendall(encode_sentence(words))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_raw(self, size: int, timeout: float | None = None) -> bytes:
        """Exactly ``size`` bytes as they came off the socket (fewer on timeout or EOF).

        Bypasses the sentence decoder, so word order and framing are seen as sent;
        only for use when no decoded sentence is waiting.
        """
        assert not self.pending and not self.decoder.pending, "decoded data is waiting"
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = b""
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(size - len(data))
            except TimeoutError:
                break
            if not chunk:
                self.eof = True
                break
            data += chunk
        return data

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        if not data:
            self.eof = True
            return False
        self.pending.extend(self.decoder.feed(data))
        return True

    def read(self, timeout: float | None = None) -> list[str] | None:
        """The next sentence, or None on timeout / EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.pending:
            if self.eof or not self._fill(deadline):
                return None
        return self.pending.popleft()

    def next_sentence(self, timeout: float | None = None) -> list[str]:
        """The next sentence; fails the test if none arrives in time (or the peer closed)."""
        sentence = self.read(timeout)
        assert sentence is not None, "no sentence before timeout/EOF"
        return sentence

    def read_until(
        self, predicate: Callable[[list[str]], bool], timeout: float | None = None
    ) -> list[list[str]]:
        """Sentences up to and including the first matching one; AssertionError if none in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got: list[list[str]] = []
        while True:
            s = self.read(max(0.0, deadline - time.monotonic()))
            if s is None:
                raise AssertionError(f"no matching sentence before timeout/EOF; got {got[-5:]!r}")
            got.append(s)
            if predicate(s):
                return got

    def command(self, *words: str, timeout: float | None = None) -> list[list[str]]:
        """Send an untagged command and return its replies through !done."""
        self.send(*words)
        return self.read_until(lambda s: s[0] == "!done", timeout)

    def login(self, user: str = "admin", password: str = "admin") -> list[list[str]]:
        return self.command("/login", f"=name={user}", f"=password={password}")

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """True once the peer closed the connection (EOF or reset) within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.eof:
                return True
            try:
                self._fill(deadline)
            except OSError:
                return True
        return self.eof


def attrs(sentence: Sequence[str]) -> dict[str, str]:
    """`=k=v` words of a reply as a dict (dotted API attributes like .tag as '.tag')."""
    out: dict[str, str] = {}
    for w in sentence[1:]:
        if w.startswith("="):
            k, _, v = w[1:].partition("=")
            out[k] = v
        elif w.startswith("."):
            k, _, v = w.partition("=")
            out[k] = v
    return out


def tag_of(sentence: Sequence[str]) -> str | None:
    for w in sentence[1:]:
        if w.startswith(".tag="):
            return w[5:]
    return None


def replies_for(sentences: Sequence[Sequence[str]], tag: str | None) -> list[Sequence[str]]:
    return [s for s in sentences if tag_of(s) == tag]
