"""A scripted API server on a real socket, for wire situations the simulator does not stage.

It logs any client in, then hands each later sentence to ``on_sentence(words, send)``
where ``send(words)`` writes one sentence back. Built on routeros.codec.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence

from routeros.codec import SentenceDecoder, encode_sentence

Send = Callable[[Sequence[str]], None]
Handler = Callable[[list[str], Send], None]


def tag_of(words: Sequence[str]) -> str | None:
    return next((w[5:] for w in words if w.startswith(".tag=")), None)


def listen_and_identity(words: list[str], send: Send) -> None:
    """A router that streams one /listen row and answers its identity ("raw")."""
    if words[0] == "/listen":
        send(["!re", "=n=1", f".tag={tag_of(words)}"])
    elif words[0] == "/system/identity/print":
        send(["!re", "=name=raw", f".tag={tag_of(words)}"])
        send(["!done", f".tag={tag_of(words)}"])


class RawRouter:
    def __init__(self, on_sentence: Handler, challenge: str | None = None) -> None:
        self.on_sentence = on_sentence
        self.challenge = challenge  # set: answer a bare plain login with !done =ret=<challenge>
        self.logins: list[list[str]] = []
        self.refuse_logins = False  # answer every later login with the post-6.43 failure trap
        self.login_reply: bytes | None = None  # set: these raw bytes answer every later login
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RawRouter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._listener.close()
        self.drop_connections()

    def inject(self, data: bytes) -> None:
        """Write raw bytes (e.g. garbage) to every open connection. A client may hang up
        before the last byte (it refuses a reply past its bounds as soon as the length
        prefixes say so): that is what the test watches for, not a failure here."""
        for conn in list(self._conns):
            try:
                conn.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def drop_connections(self) -> None:
        conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        lock = threading.Lock()

        def send(words: Sequence[str]) -> None:
            with lock:
                conn.sendall(encode_sentence(list(words)))

        decoder = SentenceDecoder()
        logged_in = False
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            for words in decoder.feed(data):
                if not logged_in:
                    self.logins.append(words)
                    if self.login_reply is not None:
                        with lock:
                            conn.sendall(self.login_reply)
                        continue
                    if self.refuse_logins:
                        send(["!trap", "=message=invalid user name or password (6)"])
                        send(["!done"])
                        continue
                    if self.challenge and not any(w.startswith("=response=") for w in words):
                        send(["!done", f"=ret={self.challenge}"])
                        continue
                    logged_in = True
                    send(["!done"])
                    continue
                self.on_sentence(words, send)
