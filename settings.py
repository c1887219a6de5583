"""The one settings module: the environment wins, then `.env`, then defaults.

The seed's variable names (MIKROTIK_*, DB_*, REDIS_ADDR, ENABLE_TRAFFIC_MONITOR,
MAX_CONCURRENT_MONITORS) are accepted as they are so an existing `.env` keeps
working; DATABASE_URL and REDIS_URL win over the pieces when set.

A malformed value fails at load time with the variable's name in the message.
Secrets are wrapped in `Secret`, whose repr and str never show the value, so a
settings object can be logged or printed safely.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

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


TLS_MODES = ("verify", "insecure", "anon-dh")


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be a boolean (true/false, yes/no, 1/0), got {raw!r}")


def _int_at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {value}")
        return value

    return parse


def _port(name: str, raw: str) -> int:
    value = _int_at_least(1)(name, raw)
    if value > 65535:
        raise SettingsError(f"{name} must be a TCP port (1-65535), got {value}")
    return value


def _float_at_least(minimum: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {value}")
        return value

    return parse


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _secret(name: str, raw: str) -> Secret:
    # Secrets keep surrounding spaces: a password may legitimately contain them.
    return Secret(raw)


def _tls_mode(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in TLS_MODES:
        raise SettingsError(f"{name} must be one of {', '.join(TLS_MODES)}, got {raw!r}")
    return value


def _redis_addr(name: str, raw: str) -> str:
    value = raw.strip()
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise SettingsError(f"{name} must be host:port, got {raw!r}")
    _port(name, port)
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


# (attribute, environment variable, parser, default as the environment would spell it)
_SPEC: tuple[tuple[str, str, Callable[[str, str], Any], str | None], ...] = (
    ("mikrotik_host", "MIKROTIK_HOST", _text, "127.0.0.1"),
    ("mikrotik_port", "MIKROTIK_PORT", _port, "8728"),
    ("mikrotik_user", "MIKROTIK_USER", _text, "admin"),
    ("mikrotik_pass", "MIKROTIK_PASS", _secret, ""),
    ("mikrotik_tls", "MIKROTIK_TLS", _parse_bool, "false"),
    ("mikrotik_tls_mode", "MIKROTIK_TLS_MODE", _tls_mode, "verify"),
    ("mikrotik_timeout", "MIKROTIK_TIMEOUT", _float_at_least(0.1), "10"),
    ("db_host", "DB_HOST", _text, None),
    ("db_port", "DB_PORT", _port, "5432"),
    ("db_user", "DB_USER", _text, "postgres"),
    ("db_password", "DB_PASSWORD", _secret, ""),
    ("db_name", "DB_NAME", _text, "mikrotik_monitor"),
    ("database_url_override", "DATABASE_URL", _url(("postgresql", "sqlite")), None),
    ("redis_addr", "REDIS_ADDR", _redis_addr, "127.0.0.1:6379"),
    ("redis_url_override", "REDIS_URL", _url(("redis", "rediss", "unix")), None),
    ("enable_traffic_monitor", "ENABLE_TRAFFIC_MONITOR", _parse_bool, "true"),
    ("max_concurrent_monitors", "MAX_CONCURRENT_MONITORS", _int_at_least(1), "50"),
    ("monitor_interval", "MONITOR_INTERVAL", _float_at_least(1.0), "1"),
    ("monitor_lease_ttl", "MONITOR_LEASE_TTL", _float_at_least(1.0), "30"),
    ("monitor_renew_interval", "MONITOR_RENEW_INTERVAL", _float_at_least(0.2), "5"),
    ("monitor_max_duration", "MONITOR_MAX_DURATION", _float_at_least(1.0), "14400"),
    ("router_connections_per_process", "ROUTER_CONNECTIONS_PER_PROCESS", _int_at_least(1), "1"),
    ("stream_maxlen", "STREAM_MAXLEN", _int_at_least(100), "200000"),
    ("customer_stream_retention", "CUSTOMER_STREAM_RETENTION", _int_at_least(60), "3600"),
    ("reconcile_interval", "RECONCILE_INTERVAL", _float_at_least(0.5), "5"),
    ("celery_visibility_timeout", "CELERY_VISIBILITY_TIMEOUT", _int_at_least(60), "43200"),
    ("data_dir", "DATA_DIR", _text, "var"),
)


@dataclass(frozen=True)
class Settings:
    mikrotik_host: str
    mikrotik_port: int
    mikrotik_user: str
    mikrotik_pass: Secret
    mikrotik_tls: bool
    mikrotik_tls_mode: str
    mikrotik_timeout: float
    db_host: str | None
    db_port: int
    db_user: str
    db_password: Secret
    db_name: str
    database_url_override: str | None
    redis_addr: str
    redis_url_override: str | None
    enable_traffic_monitor: bool
    max_concurrent_monitors: int
    monitor_interval: float
    monitor_lease_ttl: float
    monitor_renew_interval: float
    monitor_max_duration: float
    router_connections_per_process: int
    stream_maxlen: int
    customer_stream_retention: int
    reconcile_interval: float
    celery_visibility_timeout: int
    data_dir: str

    @property
    def database_url(self) -> str:
        """DATABASE_URL, else PostgreSQL from DB_* when DB_HOST is set, else embedded SQLite."""
        if self.database_url_override:
            return self.database_url_override
        if self.db_host:
            auth = quote(self.db_user, safe="")
            if self.db_password:
                auth += ":" + quote(self.db_password.get(), safe="")
            return (
                f"postgresql+psycopg2://{auth}@{self.db_host}:{self.db_port}/{quote(self.db_name, safe='')}"
            )
        return f"sqlite:///{Path(self.data_dir) / 'monitor.db'}"

    @property
    def redis_url(self) -> str:
        return self.redis_url_override or f"redis://{self.redis_addr}/0"

    def __repr__(self) -> str:
        # Secrets render masked through Secret.__repr__; URLs may embed passwords.
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_override") and value:
                value = "<set>"
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` file: KEY=VALUE lines, `#` comments, optional `export` and quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
            value = value[1:-1]
        values[key] = value
    return values


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | str | None = None) -> Settings:
    """Build settings from `environ` (default os.environ), then `env_file`, then defaults."""
    environ = os.environ if environ is None else environ
    if env_file is None:
        env_file = environ.get("ENV_FILE", ".env")
    file_values = read_env_file(Path(env_file))
    kwargs: dict[str, Any] = {}
    for attr, var, parse, default in _SPEC:
        raw = environ.get(var)
        if raw is None or (raw == "" and parse is not _secret):
            raw = file_values.get(var)
        if raw is None or (raw == "" and parse is not _secret):
            raw = default
        kwargs[attr] = None if raw is None else parse(var, raw)
    return Settings(**kwargs)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()


def setting_names() -> list[tuple[str, str | None]]:
    """(variable, default) pairs, for documentation and `--help` output."""
    return [(var, default) for _, var, _, default in _SPEC]
