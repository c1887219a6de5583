"""One logged-in API connection, built on librouteros's connect/login/protocol layers.

librouteros does the TCP/TLS connect, the login and the word/sentence codec. What it
lacks for streaming (docs/routeros.md, Long-running commands): a read path that a timeout can never cut
mid-sentence, and writes that are safe next to a reader thread. So after login the
socket is switched to non-blocking and handed to ``MuxTransport`` (the transport
librouteros's ``ApiProtocol`` reads words through): it buffers what it receives, so a partial sentence
simply waits in the buffer; a stall is detected by the client's keepalive watchdog,
which calls ``kill()`` to unblock the reader.
"""

from __future__ import annotations

import codecs
import functools
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import librouteros
from librouteros import exceptions as lr_exc
from librouteros.api import Api
from librouteros.login import encode_password
from librouteros.protocol import ApiProtocol, decode_length, determine_length

from routeros.errors import FatalError, LoginError, ProtocolError, UnreachableError

if TYPE_CHECKING:  # the codec protocol's type in typeshed; nothing to import at run time
    from typing_extensions import Buffer

_READ_CHUNK = 65536

log = logging.getLogger(__name__)

# -- bounds on what a router may send (docs/routeros.md, Bounds on replies) ------------------
#
# A word's length prefix arrives before its bytes, so a reader that believes it reserves,
# or waits for, whatever the prefix claims: up to 256 MiB in the 4-byte form. A corrupt
# prefix almost always means the stream is out of step, and nothing after it can be
# framed again, so a reply beyond any of these bounds is a protocol error that costs the
# connection (the client re-dials on its backoff and re-issues its streams).
#
# The largest words we know of are a script's source or a comment, some KiB; 1 MiB is
# far beyond any, and small enough that the check costs nothing to hold.
MAX_REPLY_WORD = 1 << 20
# One word per property: a print without .proplist of the richest menus sends a few
# dozen. Ten thousand is two orders of magnitude beyond that.
MAX_REPLY_WORDS = 10_000
# All the words of one sentence together, so that words under both bounds above still
# cannot pile up gigabytes before the sentence ends.
MAX_REPLY_SENTENCE = 4 << 20

# -- text encoding (docs/routeros.md, Encodings) ------------------------------------------------
#
# RouterOS stores the bytes it is given and names no encoding: Winbox writes in the
# Windows code page of the PC it runs on, API clients mostly write UTF-8. So every
# word is read as UTF-8 when it is valid UTF-8, else in the router's code page
# (cp1252 for a router set to utf-8); and words are written in the router's encoding,
# so a name read from a code-page router goes back as the same bytes. librouteros
# decodes with errors="ignore" (a wrong guess would silently drop letters), so the
# rule is a codec of its own, named ``routeros_text_<encoding>``, that never fails
# on input.

DEFAULT_ENCODING = "utf-8"
# Winbox on a Western European Windows: the usual code page of non-UTF-8 names.
DEFAULT_FALLBACK = "cp1252"
_CODEC_PREFIX = "routeros_text_"
_KEEP_BYTES = "routeros_keep_bytes"


def _keep_bytes(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Bytes a code page leaves undefined (cp1252 0x81, 0x8D, ...) read as the same
    Latin-1 character and are written back as that byte: nothing is lost either way.
    Any other character the code page lacks stays an encoding error."""
    if isinstance(exc, UnicodeDecodeError):
        return exc.object[exc.start : exc.end].decode("latin-1"), exc.end
    if isinstance(exc, UnicodeEncodeError):
        chunk = exc.object[exc.start : exc.end]
        if all(ord(ch) < 0x100 for ch in chunk):
            return chunk.encode("latin-1"), exc.end
    raise exc


codecs.register_error(_KEEP_BYTES, _keep_bytes)


def _text_codec_info(encoding: str) -> codecs.CodecInfo:
    name = codecs.lookup(encoding).name
    fallback = DEFAULT_FALLBACK if name == "utf-8" else name

    def encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
        return text.encode(name, _KEEP_BYTES if name != "utf-8" else errors), len(text)

    def decode(data: Buffer, errors: str = "strict") -> tuple[str, int]:
        raw = bytes(data)
        try:
            return raw.decode("utf-8"), len(raw)
        except UnicodeDecodeError:
            return raw.decode(fallback, _KEEP_BYTES), len(raw)

    return codecs.CodecInfo(encode, decode, name=_CODEC_PREFIX + name)


def _search(name: str) -> codecs.CodecInfo | None:
    if not name.startswith(_CODEC_PREFIX):
        return None
    try:
        return _text_codec_info(name[len(_CODEC_PREFIX) :])
    except LookupError:
        return None


codecs.register(_search)


def check_encoding(encoding: str) -> str:
    """The codec name of a router's text encoding; ValueError for one that cannot be
    a router's: unknown, or not a superset of ASCII (every command word is ASCII)."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown text encoding {encoding!r} (e.g. utf-8, cp1252, cp1251)") from None
    try:
        ascii_safe = "/interface=.tag?!".encode(info.name) == b"/interface=.tag?!"
    except (UnicodeError, LookupError):
        ascii_safe = False
    if not ascii_safe:
        raise ValueError(f"text encoding {encoding!r} changes ASCII (use utf-8 or a code page)")
    return info.name


def quiet_librouteros_logger() -> None:
    """librouteros logs every word at DEBUG, the login password included: keep it above."""
    lr_logger = logging.getLogger("librouteros")
    if lr_logger.level < logging.INFO:  # NOTSET would inherit a DEBUG root
        lr_logger.setLevel(logging.INFO)


quiet_librouteros_logger()


@dataclass(repr=False)
class RouterEndpoint:
    """Where a router is and how to log in. The password never appears in repr().

    ``cafile`` is the CA that signs the router's API-SSL certificate, for ``tls_mode``
    "verify": either the path of a PEM file, or the PEM text itself (any value that
    contains ``-----BEGIN CERTIFICATE-----``), so a per-router CA can live in a
    database row or an environment variable. None (or empty) means the system's
    trusted CAs. The other modes ignore it (docs/routeros.md, API-SSL).

    ``encoding`` is how the router holds text that is not ASCII: ``utf-8``, or the code
    page its names were typed in through Winbox (``cp1252``, ``cp1251``...). Words are
    written in it; read as UTF-8 when valid, else in it (docs/routeros.md, Encodings).
    """

    host: str
    port: int = 8728
    username: str = "admin"
    password: str = ""
    tls: bool = False
    tls_mode: str = "verify"
    cafile: str | None = None
    timeout: float = 10.0
    name: str = ""
    encoding: str = DEFAULT_ENCODING

    def __post_init__(self) -> None:
        if self.tls_mode not in TLS_CONTEXTS:
            raise ValueError(f"tls_mode must be one of {', '.join(TLS_CONTEXTS)}, not {self.tls_mode!r}")
        if self.timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.encoding = check_encoding(self.encoding)

    @property
    def codec(self) -> str:
        """The codec every word to and from this router goes through."""
        return _CODEC_PREFIX + self.encoding

    def __repr__(self) -> str:
        tls = f", tls={self.tls_mode}" if self.tls else ""
        label = f"{self.name!r}, " if self.name else ""
        return f"RouterEndpoint({label}{self.username}@{self.host}:{self.port}{tls}, password=***)"

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.port}"


PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def _ca_is_pem(cafile: str) -> bool:
    """Is this ``RouterEndpoint.cafile`` value the PEM text itself rather than a path?"""
    return PEM_CERTIFICATE in cafile


def _verified(endpoint: RouterEndpoint) -> ssl.SSLContext:
    ca = endpoint.cafile or None
    if ca is not None and _ca_is_pem(ca):
        return ssl.create_default_context(cadata=ca)
    return ssl.create_default_context(cafile=ca)


def _unverified(endpoint: RouterEndpoint) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _anonymous(endpoint: RouterEndpoint) -> ssl.SSLContext:
    # A router without a certificate only offers anonymous DH (TLS <= 1.2).
    ctx = _unverified(endpoint)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ADH:@SECLEVEL=0")
    return ctx


# How each API-SSL mode is implemented. The device layer imports nothing of ours, so
# the configuration's list of modes (settings.TlsMode) is checked against this table
# by a test instead of being imported.
TLS_CONTEXTS: dict[str, Callable[[RouterEndpoint], ssl.SSLContext]] = {
    "verify": _verified,
    "insecure": _unverified,
    "anon-dh": _anonymous,
}


def make_ssl_context(endpoint: RouterEndpoint) -> ssl.SSLContext:
    """TLS settings for API-SSL: verification is on unless the endpoint says otherwise."""
    return TLS_CONTEXTS[endpoint.tls_mode](endpoint)


class BoundedApiProtocol(ApiProtocol):  # type: ignore[misc]  # librouteros is untyped
    """librouteros's ApiProtocol with a reader that checks every length prefix before it
    reads (docs/routeros.md, Bounds on replies), used from the login on.

    librouteros reads ``length`` bytes for any prefix below 0x10000000; its blocking
    transport even asks ``recv`` for all of them at once, which allocates that much.
    """

    def readSentence(self) -> tuple[str, tuple[str, ...]]:  # librouteros's name, not ours
        words: list[str] = []
        size = 0
        while True:
            first: bytes = self.transport.read(1)
            length = decode_length(first + self.transport.read(determine_length(first)))
            if length == 0:
                if words:
                    break
                continue  # an empty sentence: the router ignores them, so do we (docs/routeros.md, Sentences)
            if length > MAX_REPLY_WORD:
                raise lr_exc.ProtocolError(f"reply word of {length} bytes (the limit is {MAX_REPLY_WORD})")
            if len(words) >= MAX_REPLY_WORDS:
                raise lr_exc.ProtocolError(f"reply sentence of more than {MAX_REPLY_WORDS} words")
            size += length
            if size > MAX_REPLY_SENTENCE:
                raise lr_exc.ProtocolError(f"reply sentence of more than {MAX_REPLY_SENTENCE} bytes")
            data: bytes = self.transport.read(length)
            words.append(data.decode(self.encoding, errors="ignore"))
        reply, rest = words[0], tuple(words[1:])
        if reply == "!fatal":
            self.transport.close()
            raise lr_exc.FatalError(rest[0] if rest else "")
        return reply, rest


class _BoundedApi(Api):  # type: ignore[misc]  # librouteros is untyped
    """librouteros's Api reading through a BoundedApiProtocol: ``librouteros.connect``
    builds its own protocol, and takes this class as its ``subclass``, so the login's
    replies are bounded too."""

    def __init__(self, protocol: ApiProtocol) -> None:
        super().__init__(BoundedApiProtocol(transport=protocol.transport, encoding=protocol.encoding))


def login_plain_or_challenge(api: Api, username: str, password: str) -> None:
    """Plain login (RouterOS >= 6.43); if the router answers with a challenge, do the legacy MD5 one.

    Pre-6.43 routers ignore the extra words and reply ``!done =ret=<challenge>``
    (docs/routeros.md, Login).
    """
    rows = tuple(api("/login", name=username, password=password))
    challenge = next((row["ret"] for row in rows if "ret" in row), None)
    if challenge is None:
        return
    tuple(api("/login", name=username, response=encode_password(str(challenge), password)))


class MuxTransport:
    """A non-blocking socket shared by one reader thread and many writer threads.

    It stands in for librouteros's ``SocketTransport`` under ``ApiProtocol``, which only
    calls ``read(n)``, ``write(data)`` and ``close()``.

    Reads are buffered, so ``read(n)`` never loses bytes to a timeout: there is no
    read timeout at all. Every syscall on the socket holds ``_io_lock`` because an
    SSL object must not be used by two threads at once; waiting (poll) is done
    outside the lock so a blocked reader never stalls a writer.
    """

    def __init__(self, sock: socket.socket, write_timeout: float) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.write_timeout = write_timeout
        self.last_rx = time.monotonic()
        self._buf = bytearray()
        self._pos = 0
        self._io_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._dead = False
        # Bytes TLS has already decrypted wait in the SSL object, invisible to poll().
        self._ssl_sock = sock if isinstance(sock, ssl.SSLSocket) else None
        self._rpoll = select.poll()
        self._rpoll.register(sock.fileno(), select.POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(sock.fileno(), select.POLLOUT)

    def read(self, length: int) -> bytes:
        while len(self._buf) - self._pos < length:
            self._fill()
        start = self._pos
        self._pos += length
        data = bytes(self._buf[start : self._pos])
        if self._pos > _READ_CHUNK:  # compact now and then, not on every word
            del self._buf[: self._pos]
            self._pos = 0
        return data

    def _fill(self) -> None:
        while True:
            if self._dead:
                raise lr_exc.ConnectionClosed("Connection closed locally.")
            if not (self._ssl_sock is not None and self._ssl_sock.pending()):
                self._rpoll.poll()
            with self._io_lock:
                try:
                    data = self.sock.recv(_READ_CHUNK)
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    continue
                except OSError as exc:
                    raise lr_exc.ConnectionClosed(f"Connection lost: {exc}") from exc
            if not data:
                raise lr_exc.ConnectionClosed("Connection unexpectedly closed.")
            self._buf += data
            self.last_rx = time.monotonic()
            return

    def write(self, data: bytes) -> None:
        """Write one whole sentence; a timeout here means the stream is unusable (caller kills it)."""
        with self._write_lock:
            view = memoryview(data)
            deadline = time.monotonic() + self.write_timeout
            while view:
                if self._dead:
                    raise lr_exc.ConnectionClosed("Connection closed locally.")
                with self._io_lock:
                    try:
                        sent = self.sock.send(view)
                    except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        sent = 0
                if sent:
                    view = view[sent:]
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"write blocked for {self.write_timeout:g}s")
                self._wpoll.poll(remaining * 1000)

    def kill(self) -> None:
        """Unblock the reader and any writer; the socket is closed by close() later."""
        self._dead = True
        try:
            # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops its SSL
            # object under a reader that may be inside it.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.kill()
        with self._io_lock:
            self.sock.close()


class Connection:
    """A logged-in connection: librouteros ApiProtocol over a MuxTransport."""

    def __init__(self, endpoint: RouterEndpoint, transport: MuxTransport) -> None:
        self.endpoint = endpoint
        self.transport = transport
        self.protocol = BoundedApiProtocol(transport=transport, encoding=endpoint.codec)

    def read_sentence(self) -> tuple[str, tuple[str, ...]]:
        """Block until one whole sentence arrives. Raises librouteros exceptions (the reader maps them)."""
        return self.protocol.readSentence()

    def write_sentence(self, words: list[str]) -> None:
        self.protocol.writeSentence(words[0], *words[1:])

    @property
    def last_rx(self) -> float:
        return self.transport.last_rx

    def kill(self) -> None:
        self.transport.kill()

    def close(self) -> None:
        self.transport.close()


def _ssl_context_or_raise(endpoint: RouterEndpoint) -> ssl.SSLContext:
    """make_ssl_context, with an unloadable CA turned into an UnreachableError that says which."""
    try:
        return make_ssl_context(endpoint)
    except OSError as exc:  # ssl.SSLError included: the file or text holds no usable certificate
        ca = endpoint.cafile or ""
        # Never echo PEM text into a message: name what it is instead.
        source = "the CA given as PEM text" if _ca_is_pem(ca) else f"the CA file {ca!r}"
        raise UnreachableError(
            f"TLS to {endpoint.label}: cannot load {source}: {exc.strerror or exc}"
        ) from exc


# Routers this process has warned about (name, host, port): the warning is about how the
# router is configured, so once is enough, however many connections, re-dials and monitors.
_cleartext_warned: set[tuple[str, str, int]] = set()
_cleartext_lock = threading.Lock()


def _warn_cleartext_login(endpoint: RouterEndpoint) -> None:
    """Say once per router and process that its login crosses the network in clear text
    (docs/routeros.md, Login). Never shows the password."""
    key = (endpoint.name, endpoint.host, endpoint.port)
    with _cleartext_lock:
        if key in _cleartext_warned:
            return
        _cleartext_warned.add(key)
    address = f"{endpoint.host}:{endpoint.port}"
    router = f"{endpoint.name} ({address})" if endpoint.name else address
    log.warning(
        "router %s is logged in to without API-SSL, so the API login sends the password "
        "unencrypted (the plain API, port 8728); use API-SSL instead (MIKROTIK_TLS=true, or tls "
        "on its routers row; port 8729)",
        router,
    )


def open_connection(endpoint: RouterEndpoint) -> Connection:
    """Connect and log in. Raises LoginError, UnreachableError or ProtocolError, nothing else."""
    quiet_librouteros_logger()
    if not endpoint.tls:
        # Before the attempt: the password goes out whether the login succeeds or not.
        _warn_cleartext_login(endpoint)
    ssl_wrapper = None
    if endpoint.tls:
        ctx = _ssl_context_or_raise(endpoint)
        hostname = endpoint.host if endpoint.tls_mode == "verify" else None
        ssl_wrapper = functools.partial(ctx.wrap_socket, server_hostname=hostname)
    api = _login(endpoint, ssl_wrapper)
    sock = api.protocol.transport.sock
    return Connection(endpoint, MuxTransport(sock, write_timeout=endpoint.timeout))


def _login(endpoint: RouterEndpoint, ssl_wrapper: Callable[..., ssl.SSLSocket] | None) -> _BoundedApi:
    """librouteros's connect and login, with each of its failures raised as ours."""
    where = endpoint.label
    try:
        api: _BoundedApi = librouteros.connect(
            endpoint.host,
            endpoint.username,
            endpoint.password,
            timeout=endpoint.timeout,
            port=endpoint.port,
            encoding=endpoint.codec,
            ssl_wrapper=ssl_wrapper,
            subclass=_BoundedApi,
            login_method=login_plain_or_challenge,
        )
    except lr_exc.TrapError as exc:
        raise LoginError(str(exc.message), exc.category) from None
    except lr_exc.MultiTrapError as exc:
        traps = [(str(t.message), t.category) for t in exc.traps]
        raise LoginError(traps[0][0], traps[0][1], traps) from None
    except lr_exc.FatalError as exc:
        raise FatalError(str(exc)) from None
    except lr_exc.ConnectionClosed as exc:
        raise UnreachableError(f"{where} closed the connection during login") from exc
    except lr_exc.ProtocolError as exc:
        raise ProtocolError(f"{where}: {exc}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise UnreachableError(f"TLS certificate of {where} not trusted: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise UnreachableError(f"TLS handshake with {where} failed: {exc.reason or exc}") from exc
    except TimeoutError as exc:
        raise UnreachableError(f"{where} did not answer within {endpoint.timeout:g}s") from exc
    except socket.gaierror as exc:
        # The resolver's words ("Name or service not known") and the name it could not
        # resolve: the router's label alone may be a database id.
        raise UnreachableError(f"cannot resolve {endpoint.host!r} ({where}): {exc.strerror or exc}") from exc
    except OSError as exc:
        raise UnreachableError(f"cannot reach {where}: {exc.strerror or exc}") from exc
    except (UnicodeError, ValueError, KeyError, StopIteration, TypeError) as exc:
        # e.g. a non-ASCII password for the legacy challenge, or a malformed login reply
        # (librouteros builds its TrapError from a !trap's attributes as keyword arguments:
        # one without =message=, or with any other attribute, is a TypeError)
        raise ProtocolError(f"login to {where} failed: {type(exc).__name__}") from None
    return api
