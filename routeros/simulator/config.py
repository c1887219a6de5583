"""Simulator configuration.

Where docs/routeros.md marks router behaviour unverified, the choice is a field here so a
test or a benchmark can exercise every plausible variant; defaults are documented inline.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from .words import TAG_POSITIONS

__all__ = ["SimulatorConfig", "parse_version", "DROP_MODES", "OVER_LIMIT_MODES"]

DROP_MODES = ("trap", "done", "zeros", "stall")
OVER_LIMIT_MODES = ("close", "reset", "fatal", "refuse")
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")


def parse_version(text: str) -> tuple[int, int, int]:
    """'7.24' -> (7, 24, 0); '6.45.1' -> (6, 45, 1).  ValueError on anything else."""
    m = _VERSION_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a RouterOS version: {text!r} (expected e.g. 7.24 or 6.45.1)")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass
class SimulatorConfig:
    pppoe: int = 50
    hotspot: int = 5
    static: int = 5
    user: str = "admin"
    password: str = field(default="admin", repr=False)
    seed: int = 1
    version: str = "7.24"
    identity: str = "sim-router"
    host: str = "127.0.0.1"
    # Host written into customers JSON (what a client should dial); None = host, or 127.0.0.1
    # when host is a wildcard address such as 0.0.0.0 (e.g. "simulator" inside docker compose).
    advertise_host: str | None = None
    port: int = 0  # 0 = ephemeral; read the bound port from Simulator.port
    tls: bool = False
    ssl_port: int = 0  # used only when tls is on; 0 = ephemeral
    # "cert": TLS with a generated self-signed certificate (Simulator.cafile);
    # "anon-dh": no certificate, anonymous DH ciphers only (RouterOS api-ssl without a certificate).
    tls_mode: str = "cert"
    max_sessions: int = 20  # per service (api and api-ssl each), as RouterOS >= 7.16
    # What the (max_sessions+1)-th connection sees (UNVERIFIED on real routers):
    # "close" = accepted, then closed at once without a byte (FIN); "reset" = accepted then
    # reset (RST); "fatal" = `!fatal` with a reason word, then closed; "refuse" = the
    # service stops listening while it is full (connection refused), and a connection
    # that slips in while it is being closed is treated as "close".
    over_limit: str = "close"
    # Commands other than /login before a successful login (not documented beyond "limited"):
    # "fatal" = `!fatal not logged in`, then close; "trap" = `!trap =message=not logged in`
    # + `!done`, connection kept (until prelogin_max_commands, then `!fatal`).
    pre_login: str = "fatal"
    prelogin_max_commands: int = 8
    prelogin_max_bytes: int = 16384
    # After a failed login (UNVERIFIED): "keep" = socket stays open and a new /login may
    # follow; "close" = socket is closed right after the trap and `!done`.
    failed_login: str = "keep"
    # What a running monitor-traffic does when its PPPoE interface disappears (UNVERIFIED);
    # one of DROP_MODES, overridable per drop_pppoe() call:
    # "trap" = `!trap =category=0 =message=no such item` then `!done`; "done" = bare `!done`;
    # "zeros" = keeps streaming rows of zeros until the session returns;
    # "stall" = sends nothing for that interface until the session returns.
    drop_mode: str = "trap"
    drop_trap_message: str = "no such item"
    # /cancel =tag=<unknown> (UNVERIFIED): "done" = plain `!done`; "trap" = trap + `!done`.
    cancel_unknown: str = "done"
    cancel_unknown_message: str = "no such command"
    # Unit of /queue/simple `rate` (manual says bytes/s, tooling treats it as bits/s; UNVERIFIED).
    queue_rate_unit: str = "bps"
    default_interval: float = 1.0  # monitor-traffic without =interval= (UNVERIFIED default 1 s)
    # /ping =count=N: a totals-only row (`sent` without `seq`) before `!done` (UNVERIFIED; the
    # one real capture has totals on every probe row and no such row: docs/routeros.md, Ping).
    ping_summary_row: bool = False
    min_interval: float = 0.05  # lower bound so a client cannot turn the simulator into a busy loop
    latency: float = 0.0  # seconds added before every reply (set_latency changes it live)
    # Where `.tag=` goes in a reply: "first" right after the reply word, as routers send it;
    # "last" after every attribute, as in MikroTik's manual examples (and this simulator before).
    tag_position: str = "first"
    # Commands the API user may not run, as a user whose group lacks the policy: each gets
    # `!trap =message=not enough permissions (9)` (no category: none is documented) then
    # `!done`. E.g. ("/interface/monitor-traffic", "/queue/simple/print"); getall = print.
    denied_commands: tuple[str, ...] = ()
    # How the router holds text beyond ASCII (docs/routeros.md, Encodings): RouterOS keeps
    # the bytes it was given. "utf-8" = names written in UTF-8 (over the API, WebFig);
    # a code page such as "cp1252" = names typed in Winbox on a Windows PC using it.
    # Every name and comment goes out as those bytes, and a name a client sends matches
    # only when its bytes are the same.
    text_encoding: str = "utf-8"
    # Extra PPPoE customers with chosen names, after the generated ones: (username, full
    # name), e.g. ("josé", "Ñandú Pérez"). The full name is its PPP secret's comment.
    pppoe_names: tuple[tuple[str, str], ...] = ()
    max_word: int = 1 << 20  # a peer announcing a bigger word is treated as garbage
    cert_dir: str | None = None  # where the generated cert goes; None = a private temp dir

    def __post_init__(self) -> None:
        self.validate()

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    def validate(self) -> None:
        parse_version(self.version)
        for name in ("pppoe", "hotspot", "static"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0 or value > 100_000:
                raise ValueError(f"{name} must be an integer between 0 and 100000, got {value!r}")
        for name in ("port", "ssl_port"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= 65535:
                raise ValueError(f"{name} must be 0..65535, got {value!r}")
        if not 1 <= self.max_sessions <= 100_000:
            raise ValueError(f"max_sessions must be >= 1, got {self.max_sessions!r}")
        choices = {
            "tls_mode": ("cert", "anon-dh"),
            "over_limit": OVER_LIMIT_MODES,
            "pre_login": ("fatal", "trap"),
            "failed_login": ("keep", "close"),
            "drop_mode": DROP_MODES,
            "cancel_unknown": ("done", "trap"),
            "queue_rate_unit": ("bps", "Bps"),
            "tag_position": TAG_POSITIONS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if not self.user:
            raise ValueError("user must not be empty")
        try:
            codecs.lookup(self.text_encoding)
            ascii_safe = "/interface".encode(self.text_encoding) == b"/interface"
        except (LookupError, UnicodeError):
            ascii_safe = False
        if not ascii_safe:
            raise ValueError(f"text_encoding must be utf-8 or a code page, got {self.text_encoding!r}")
        for username, name in self.pppoe_names:
            if not username or not name:
                raise ValueError("pppoe_names entries need a username and a name")
            try:
                (username + name).encode(self.text_encoding)
            except UnicodeEncodeError:
                raise ValueError(
                    f"{username!r} / {name!r} cannot be written in {self.text_encoding}"
                ) from None
        if self.default_interval <= 0 or self.min_interval <= 0:
            raise ValueError("intervals must be positive")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
