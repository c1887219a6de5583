"""The one settings module: the environment wins, then `.env`, then defaults.

The seed's variable names (MIKROTIK_*, DB_*, REDIS_ADDR/PASS/DB, WS_PORT,
ENABLE_TRAFFIC_MONITOR, MAX_CONCURRENT_MONITORS) are accepted as they are so an
existing `.env` keeps working; DATABASE_URL and REDIS_URL win over the pieces.

A malformed value fails at load time with the variable's name in the message; so
does a pair of values that contradict each other (both variables are named).
Secrets are wrapped in `Secret`, whose repr and str never show the value, so a
settings object can be logged or printed safely.

Each setting is declared once, as a field of `Settings`: its type, its variable, its
parser and its default (`setting(...)`); `SPECS` lists them for whatever reads the
declarations (loading, the unknown-variable warning, the README check).
"""

from __future__ import annotations

import codecs
import functools
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast, dataclass_transform, overload
from urllib.parse import quote

from dotenv.parser import parse_stream

log = logging.getLogger(__name__)

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is malformed; the message names the variable, never a secret's value."""


class Secret:
    """A string that never shows itself in repr/str (logs, tracebacks, responses)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class TlsMode(StrEnum):
    """How API-SSL checks the router; the one list of modes (routeros implements each)."""

    VERIFY = "verify"  # CA + hostname
    INSECURE = "insecure"  # encrypted, certificate not checked (self-signed)
    ANON_DH = "anon-dh"  # a router with no certificate: anonymous DH, TLS <= 1.2


# -- parsers: (variable name, raw text) -> value, raising SettingsError naming the variable ----


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be a boolean (true/false, yes/no, 1/0), got {raw!r}")


@overload
def _number(kind: type[int], minimum: float, maximum: float | None = None) -> Callable[[str, str], int]: ...
@overload
def _number(
    kind: type[float], minimum: float, maximum: float | None = None
) -> Callable[[str, str], float]: ...
def _number(
    kind: type[int] | type[float], minimum: float, maximum: float | None = None
) -> Callable[[str, str], Any]:
    what = "an integer" if kind is int else "a number"

    def parse(name: str, raw: str) -> int | float:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum:g}, got {value:g}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name} must be at most {maximum:g}, got {value:g}")
        return value

    return parse


_port = _number(int, 1, 65535)


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _secret(name: str, raw: str) -> Secret:
    # Secrets keep surrounding spaces: a password may legitimately contain them.
    return Secret(raw)


def _tls_mode(name: str, raw: str) -> TlsMode:
    try:
        return TlsMode(raw.strip().lower())
    except ValueError:
        raise SettingsError(f"{name} must be one of {', '.join(TlsMode)}, got {raw!r}") from None


def _text_encoding(name: str, raw: str) -> str:
    """A router's text encoding: utf-8 or a code page that keeps ASCII as it is
    (docs/routeros.md, Encodings), by its codec name ("Windows-1252" reads as cp1252)."""
    value = raw.strip()
    try:
        codec = codecs.lookup(value).name
        ascii_safe = "/interface".encode(codec) == b"/interface"
    except (LookupError, UnicodeError):
        ascii_safe = False
    if not ascii_safe:
        raise SettingsError(f"{name} must be utf-8 or a code page such as cp1252, got {raw!r}")
    return codec


def _redis_addr(name: str, raw: str) -> str:
    value = raw.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise SettingsError(f"{name} must be host:port, got {raw!r}")
    _port(name, port)
    return value


def _sentinels(name: str, raw: str) -> tuple[tuple[str, int], ...]:
    """Sentinel addresses, `host:port,host:port,...` (empty: no Sentinel, plain Redis)."""
    out: list[tuple[str, int]] = []
    for value in (v.strip() for v in raw.split(",")):
        if not value:
            continue
        host, sep, port = value.rpartition(":")
        if not sep or not host:
            raise SettingsError(f"{name} must list host:port pairs separated by commas, got {value!r}")
        out.append((host.strip("[]"), _port(name, port)))
    return tuple(out)


def _origins(name: str, raw: str) -> tuple[str, ...]:
    # "null" is the Origin of a page opened from file:// (the seed's test page) or a
    # sandboxed frame: allowed only when listed, by that word.
    values = tuple(v.strip().rstrip("/") for v in raw.split(",") if v.strip())
    for value in values:
        if value not in ("*", "null") and "://" not in value:
            raise SettingsError(f"{name} must list origins like https://noc.example.net, got {value!r}")
    return values


def _hosts(name: str, raw: str) -> tuple[str, ...]:
    """Host names (or `*.example.net` patterns) without scheme or port, lower-cased."""
    values = tuple(v.strip().lower() for v in raw.split(",") if v.strip())
    for value in values:
        bare = value[2:] if value.startswith("*.") else value
        if not bare or "/" in bare or "*" in bare or (":" in bare and not bare.startswith("[")):
            raise SettingsError(
                f"{name} must list host names like noc.example.net or *.example.net "
                f"(no scheme, no port), got {value!r}"
            )
    return values


# Long enough that guessing is hopeless even without the rate limit (`mtmon token` makes
# a 43-character one: 256 random bits).
MIN_TOKEN_LENGTH = 32


def _token(name: str, raw: str) -> Secret:
    if raw and len(raw) < MIN_TOKEN_LENGTH:
        raise SettingsError(
            f"{name} must be at least {MIN_TOKEN_LENGTH} characters (got {len(raw)}); "
            "make one with `mtmon token`"
        )
    return Secret(raw)


_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _sslmode(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in _SSL_MODES:
        raise SettingsError(f"{name} must be one of {', '.join(_SSL_MODES)}, got {raw!r}")
    return value


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(name: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in _LOG_LEVELS:
        raise SettingsError(f"{name} must be one of {', '.join(_LOG_LEVELS)}, got {raw!r}")
    return value


def _url(schemes: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip()
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if not any(scheme == s or scheme.startswith(s + "+") for s in schemes):
            # The URL may embed a password: name the variable and the scheme only.
            raise SettingsError(
                f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
                f" (got scheme {scheme!r})"
            )
        return value

    return parse


def _dashboard_url(name: str, raw: str) -> str:
    """Empty, or the dashboard's address as receivers should reach it (links in alerts)."""
    value = raw.strip().rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be empty or an http:// or https:// URL, got {raw!r}")
    return value


_SETTING = "setting"


class SettingSpec(NamedTuple):
    """One declared setting: where it is read from and how."""

    attr: str  # the Settings attribute
    var: str  # the environment (and `.env`) variable
    parse: Callable[[str, str], Any]  # (variable name, raw text) -> value
    default: str | None  # as the environment would spell it; None: no value


def setting(var: str, parse: Callable[[str, str], T], default: str | None = None, /) -> T:
    """A Settings field read from `var` by `parse`, with `default` spelled as in the
    environment. Typed as the parser's value, so mypy checks it against the annotation;
    positional-only, so the type checker never takes `default` for the field's own."""
    return cast(T, field(metadata={_SETTING: (var, parse, default)}))


@dataclass_transform(frozen_default=True, field_specifiers=(setting,))
def _settings_class(cls: type[T]) -> type[T]:
    # A frozen dataclass whose fields are all required: load_settings fills every one.
    return dataclass(frozen=True)(cls)


# Prefixes of the variables this service (or the seed it replaces) reads: one of these
# that nothing reads is most likely a typo or a seed setting we do not honour, and an
# operator should hear about it rather than wonder why it has no effect.
_OUR_PREFIXES = (
    "MIKROTIK_",
    "DB_",
    "REDIS_",
    "MONITOR_",
    "WS_",
    "WEB_",
    "CELERY_",
    "STREAM_",
    "AUTH_",
    "ALERT_",
    "PING_",
    "DIAG_",
)


@_settings_class
class Settings:
    """Every setting, declared once: its type, variable, parser and default (`setting`)."""

    mikrotik_host: str = setting("MIKROTIK_HOST", _text, "127.0.0.1")
    mikrotik_port: int = setting("MIKROTIK_PORT", _port, "8728")
    mikrotik_user: str = setting("MIKROTIK_USER", _text, "admin")
    mikrotik_pass: Secret = setting("MIKROTIK_PASS", _secret, "")
    mikrotik_tls: bool = setting("MIKROTIK_TLS", _parse_bool, "false")
    mikrotik_tls_mode: TlsMode = setting("MIKROTIK_TLS_MODE", _tls_mode, "verify")
    mikrotik_tls_cafile: str | None = setting("MIKROTIK_TLS_CAFILE", _text)
    mikrotik_timeout: float = setting("MIKROTIK_TIMEOUT", _number(float, 0.1), "10")
    mikrotik_encoding: str = setting("MIKROTIK_ENCODING", _text_encoding, "utf-8")
    db_host: str | None = setting("DB_HOST", _text)
    db_port: int = setting("DB_PORT", _port, "5432")
    db_user: str = setting("DB_USER", _text, "postgres")
    db_password: Secret = setting("DB_PASSWORD", _secret, "")
    db_name: str = setting("DB_NAME", _text, "mikrotik_monitor")
    db_sslmode: str | None = setting("DB_SSLMODE", _sslmode)
    db_max_open_conns: int = setting("DB_MAX_OPEN_CONNS", _number(int, 1), "30")
    db_max_idle_conns: int = setting("DB_MAX_IDLE_CONNS", _number(int, 1), "10")
    db_statement_timeout: float = setting("DB_STATEMENT_TIMEOUT", _number(float, 0.1), "10")
    database_url_override: str | None = setting("DATABASE_URL", _url(("postgresql", "sqlite")))
    redis_addr: str = setting("REDIS_ADDR", _redis_addr, "127.0.0.1:6379")
    redis_pass: Secret = setting("REDIS_PASS", _secret, "")
    redis_db: int = setting("REDIS_DB", _number(int, 0, 1023), "0")
    redis_url_override: str | None = setting("REDIS_URL", _url(("redis", "rediss", "unix")))
    # Sentinel (common/redis_clients.py): every client asks these for the master of
    # REDIS_SENTINEL_MASTER; REDIS_PASS and REDIS_DB still apply to the master.
    redis_sentinels: tuple[tuple[str, int], ...] = setting("REDIS_SENTINELS", _sentinels, "")
    redis_sentinel_master: str = setting("REDIS_SENTINEL_MASTER", _text, "mymaster")
    redis_sentinel_password: Secret = setting("REDIS_SENTINEL_PASSWORD", _secret, "")
    redis_replica_wait_ms: int = setting("REDIS_REPLICA_WAIT_MS", _number(int, 0, 60000), "500")
    enable_traffic_monitor: bool = setting("ENABLE_TRAFFIC_MONITOR", _parse_bool, "true")
    max_concurrent_monitors: int = setting("MAX_CONCURRENT_MONITORS", _number(int, 1), "50")
    monitor_interval: float = setting("MONITOR_INTERVAL", _number(float, 1.0), "1")
    monitor_lease_ttl: float = setting("MONITOR_LEASE_TTL", _number(float, 1.0), "30")
    monitor_renew_interval: float = setting("MONITOR_RENEW_INTERVAL", _number(float, 0.2), "5")
    monitor_max_duration: float = setting("MONITOR_MAX_DURATION", _number(float, 1.0), "14400")
    monitor_denied_stop_after: float = setting("MONITOR_DENIED_STOP_AFTER", _number(float, 1.0), "600")
    router_connections_per_process: int = setting("ROUTER_CONNECTIONS_PER_PROCESS", _number(int, 1), "1")
    # Router affinity (tasks/affinity.py): API sessions per router across every worker
    # process (a routers row's max_api_sessions overrides it), and the period of each
    # monitors worker's affinity round (its lease TTL is MONITOR_LEASE_TTL).
    router_max_api_sessions: int = setting("ROUTER_MAX_API_SESSIONS", _number(int, 1), "2")
    affinity_interval: float = setting("AFFINITY_INTERVAL", _number(float, 0.2), "1")
    affinity_refresh: float = setting("AFFINITY_REFRESH", _number(float, 1.0), "30")
    # The router-side ping inside every monitor (tasks/pinger.py), and its cap per router.
    monitor_ping: bool = setting("MONITOR_PING", _parse_bool, "true")
    ping_max_per_router: int = setting("PING_MAX_PER_ROUTER", _number(int, 0), "100")
    router_watch: bool = setting("ROUTER_WATCH", _parse_bool, "true")
    router_watch_interval: float = setting("ROUTER_WATCH_INTERVAL", _number(float, 1.0), "2")
    router_top_n: int = setting("ROUTER_TOP_N", _number(int, 1, 500), "50")
    stream_maxlen: int = setting("STREAM_MAXLEN", _number(int, 100), "200000")
    customer_stream_retention: int = setting("CUSTOMER_STREAM_RETENTION", _number(int, 60), "1800")
    reconcile_interval: float = setting("RECONCILE_INTERVAL", _number(float, 0.5), "5")
    celery_visibility_timeout: int = setting("CELERY_VISIBILITY_TIMEOUT", _number(int, 60), "43200")
    web_host: str = setting("WEB_HOST", _text, "127.0.0.1")
    web_port: int | None = setting("WEB_PORT", _port)
    ws_port: int = setting("WS_PORT", _port, "8081")
    ws_ping_interval: float = setting("WS_PING_INTERVAL", _number(float, 0.5), "20")
    ws_max_pending: int = setting("WS_MAX_PENDING", _number(int, 10), "5000")
    ws_max_connections: int = setting("WS_MAX_CONNECTIONS", _number(int, 1), "1000")
    api_token: Secret = setting("API_TOKEN", _token, "")
    web_allow_open: bool = setting("WEB_ALLOW_OPEN", _parse_bool, "false")
    allowed_origins: tuple[str, ...] = setting("ALLOWED_ORIGINS", _origins, "")
    trusted_hosts: tuple[str, ...] = setting("TRUSTED_HOSTS", _hosts, "")
    auth_max_failures: int = setting("AUTH_MAX_FAILURES", _number(int, 1), "10")
    auth_failure_window: float = setting("AUTH_FAILURE_WINDOW", _number(float, 1.0), "60")
    cookie_secure: bool = setting("COOKIE_SECURE", _parse_bool, "false")
    session_max_age: int = setting("SESSION_MAX_AGE", _number(int, 60), "43200")
    worker_metrics_port: int = setting("WORKER_METRICS_PORT", _number(int, 0, 65535), "0")
    log_level: str = setting("LOG_LEVEL", _log_level, "INFO")
    data_dir: str = setting("DATA_DIR", _text, "var")
    # Line diagnosis (session reports, tasks/report.py; the dashboard's verdict uses the same).
    diag_rtt_rise_ms: int = setting("DIAG_RTT_RISE_MS", _number(int, 1), "30")
    diag_min_probes: int = setting("DIAG_MIN_PROBES", _number(int, 1), "5")
    # Alerts: evaluation (README "Alerts"; tasks/alert_eval.py, tasks/alert_hooks.py).
    alerts: bool = setting("ALERTS", _parse_bool, "true")
    alert_rules_refresh: float = setting("ALERT_RULES_REFRESH", _number(float, 0.5), "10")
    alert_resolve_s: float = setting("ALERT_RESOLVE_S", _number(float, 0.0), "30")
    # Alerts: webhook delivery (README "Alerts"; tasks/alert_delivery.py).
    alert_delivery_max_age: float = setting("ALERT_DELIVERY_MAX_AGE", _number(float, 1.0), "86400")
    alert_delivery_initial_delay: float = setting("ALERT_DELIVERY_INITIAL_DELAY", _number(float, 0.1), "10")
    alert_delivery_max_delay: float = setting("ALERT_DELIVERY_MAX_DELAY", _number(float, 0.1), "3600")
    alert_delivery_sweep_interval: float = setting("ALERT_DELIVERY_SWEEP_INTERVAL", _number(float, 0.5), "30")
    alert_webhook_timeout: float = setting("ALERT_WEBHOOK_TIMEOUT", _number(float, 0.1, 60), "5")
    alert_dashboard_url: str = setting("ALERT_DASHBOARD_URL", _dashboard_url, "")

    @property
    def database_url(self) -> str:
        """DATABASE_URL, else PostgreSQL from DB_* when DB_HOST is set, else embedded SQLite."""
        if self.database_url_override:
            return self.database_url_override
        if self.db_host:
            auth = quote(self.db_user, safe="")
            if self.db_password:
                auth += ":" + quote(self.db_password.get(), safe="")
            query = f"?sslmode={self.db_sslmode}" if self.db_sslmode else ""
            where = f"{self.db_host}:{self.db_port}/{quote(self.db_name, safe='')}"
            return f"postgresql+psycopg2://{auth}@{where}{query}"
        return f"sqlite:///{Path(self.data_dir) / 'monitor.db'}"

    @property
    def redis_url(self) -> str:
        """REDIS_URL, else the seed's REDIS_ADDR with REDIS_PASS and REDIS_DB."""
        if self.redis_url_override:
            return self.redis_url_override
        auth = f":{quote(self.redis_pass.get(), safe='')}@" if self.redis_pass else ""
        return f"redis://{auth}{self.redis_addr}/{self.redis_db}"

    @property
    def http_port(self) -> int:
        """The web app's port: WEB_PORT, else the seed's WS_PORT (8081)."""
        return self.web_port if self.web_port is not None else self.ws_port

    @property
    def alert_retry_cap(self) -> float:
        """The longest wait between two attempts of a webhook delivery: ALERT_DELIVERY_MAX_DELAY,
        but at most half of CELERY_VISIBILITY_TIMEOUT, since a retry waits in the broker
        unacknowledged until it is due and Redis would hand it out again after the timeout."""
        return min(self.alert_delivery_max_delay, self.celery_visibility_timeout / 2)

    @property
    def message_expiry(self) -> float:
        """Seconds a monitor message may wait in the queue before a worker drops it.

        Its reservation is long gone by then and the reconciler has launched a newer
        attempt, so running it would only add work (never a duplicate: acquire)."""
        return max(60.0, 4 * self.monitor_lease_ttl)

    def __repr__(self) -> str:
        # Secrets render masked through Secret.__repr__; URLs may embed passwords.
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_override") and value:
                value = "<set>"
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"


# Every declared setting, in declaration order: what load_settings reads, what
# unknown_variables knows, what the README's table must list.
SPECS: tuple[SettingSpec, ...] = tuple(SettingSpec(f.name, *f.metadata[_SETTING]) for f in fields(Settings))


def _check_consistency(s: Settings) -> None:
    """Values that parse one by one but cannot work together: name both variables.

    CELERY_VISIBILITY_TIMEOUT is paired with nothing on purpose: monitor messages are
    acked when they start and workers fetch only with a free thread, so no message is
    ever unacked for long, whatever MONITOR_MAX_DURATION is (docs/architecture.md)."""
    if s.monitor_renew_interval * 2 > s.monitor_lease_ttl:
        raise SettingsError(
            f"MONITOR_RENEW_INTERVAL ({s.monitor_renew_interval:g}) must be at most half of "
            f"MONITOR_LEASE_TTL ({s.monitor_lease_ttl:g}): a lease is renewed every interval and "
            "lost after the TTL, so one slow renewal round must not lose it"
        )
    if s.affinity_interval * 2 > s.monitor_lease_ttl:
        raise SettingsError(
            f"AFFINITY_INTERVAL ({s.affinity_interval:g}) must be at most half of MONITOR_LEASE_TTL "
            f"({s.monitor_lease_ttl:g}): a worker's hold on a router is renewed every interval and "
            "lost after the TTL"
        )
    if s.reconcile_interval >= s.monitor_lease_ttl:
        raise SettingsError(
            f"RECONCILE_INTERVAL ({s.reconcile_interval:g}) must be below MONITOR_LEASE_TTL "
            f"({s.monitor_lease_ttl:g}): a monitor's reservation waits for a worker for one TTL "
            "and the reconciler must look at it before it expires"
        )
    if s.api_token and "*" in s.allowed_origins:
        raise SettingsError(
            "ALLOWED_ORIGINS=* cannot be combined with API_TOKEN: any web page an operator "
            "visits could then call the API with the operator's login; list the origins"
        )
    if s.alert_delivery_initial_delay > s.alert_delivery_max_delay:
        raise SettingsError(
            f"ALERT_DELIVERY_INITIAL_DELAY ({s.alert_delivery_initial_delay:g}) must not exceed "
            f"ALERT_DELIVERY_MAX_DELAY ({s.alert_delivery_max_delay:g})"
        )
    if s.redis_sentinels and s.redis_url_override:
        raise SettingsError(
            "REDIS_SENTINELS cannot be combined with REDIS_URL: with Sentinel the master's address "
            "comes from the sentinels (set REDIS_PASS and REDIS_DB for the master instead)"
        )
    if s.redis_sentinels and not s.redis_sentinel_master:
        raise SettingsError("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the monitored master's name)")
    if s.db_max_idle_conns > s.db_max_open_conns:
        raise SettingsError(
            f"DB_MAX_IDLE_CONNS ({s.db_max_idle_conns}) must not exceed DB_MAX_OPEN_CONNS "
            f"({s.db_max_open_conns})"
        )


def read_env_file(path: Path) -> dict[str, str]:
    """A `.env` file as python-dotenv reads it (comments, `export`, quotes, escapes).

    A line it cannot parse is an error naming the line, not a silent skip."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error:
                raise SettingsError(f"{path}:{binding.original.line}: expected KEY=VALUE")
            if binding.key is not None:
                values[binding.key] = binding.value or ""
    return values


# An empty secret in the environment means "none", not "look in .env".
_KEEPS_EMPTY = (_secret, _token)


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | str | None = None) -> Settings:
    """Build settings from `environ` (default os.environ), then `env_file`, then defaults."""
    environ = os.environ if environ is None else environ
    if env_file is None:
        env_file = environ.get("ENV_FILE", ".env")
    file_values = read_env_file(Path(env_file))
    kwargs: dict[str, Any] = {}
    for attr, var, parse, default in SPECS:
        raw = environ.get(var)
        if raw is None or (raw == "" and parse not in _KEEPS_EMPTY):
            raw = file_values.get(var)
        if raw is None or (raw == "" and parse not in _KEEPS_EMPTY):
            raw = default
        kwargs[attr] = None if raw is None else parse(var, raw)
    settings = Settings(**kwargs)
    _check_consistency(settings)
    return settings


def unknown_variables(
    environ: Mapping[str, str] | None = None, env_file: Path | str | None = None
) -> list[str]:
    """Variables that look like ours (MIKROTIK_*, DB_*, REDIS_*...) but that nothing reads."""
    environ = os.environ if environ is None else environ
    if env_file is None:
        env_file = environ.get("ENV_FILE", ".env")
    known = {spec.var for spec in SPECS}
    candidates = set(read_env_file(Path(env_file))) | set(environ)
    return sorted(v for v in candidates if v.startswith(_OUR_PREFIXES) and v not in known)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once; unknown look-alike variables are named in a warning."""
    settings = load_settings()
    unknown = unknown_variables()
    if unknown:
        log.warning("ignoring settings this service does not use: %s", ", ".join(unknown))
    return settings
