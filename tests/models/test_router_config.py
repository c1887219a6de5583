"""Where a router is reached, and with which CA: its routers row, else MIKROTIK_*."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from models import InvalidFieldError, Router
from models.router_config import router_config
from routeros import RouterEndpoint
from routeros.simulator.tls import generate_certificate
from settings import Secret, load_settings

SETTINGS_CA = "/etc/mikrotik/default-ca.pem"
DEFAULTS = load_settings(
    {
        "MIKROTIK_HOST": "192.0.2.1",
        "MIKROTIK_PORT": "8729",
        "MIKROTIK_PASS": "default-pass",
        "MIKROTIK_TLS": "true",
        "MIKROTIK_TLS_CAFILE": SETTINGS_CA,
        "MIKROTIK_TIMEOUT": "4",
    },
    env_file="/nonexistent.env",
)


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    cert, _key = generate_certificate(str(tmp_path_factory.mktemp("ca")), ["127.0.0.1"])
    return Path(cert).read_text(encoding="ascii")


def _router(session: Session, **fields: object) -> Router:
    values: dict[str, object] = {"id": "mikrotik-001", "name": "core", "host": "10.9.0.1", "password": "pw"}
    values.update(fields)
    with session.begin():
        router = Router(**values)
        session.add(router)
    return router


def test_router_config_row_ca_path_reaches_the_endpoint(pg_session: Session) -> None:
    _router(pg_session, tls=True, tls_ca="/srv/ca/core.pem")
    config = router_config(pg_session, "mikrotik-001", DEFAULTS)
    assert (config.cafile, config.from_settings, config.timeout) == ("/srv/ca/core.pem", False, 4.0)
    kwargs = config.endpoint_kwargs()
    assert kwargs["cafile"] == "/srv/ca/core.pem"
    endpoint = RouterEndpoint(**kwargs)
    assert (endpoint.cafile, endpoint.tls, endpoint.port, endpoint.name) == (
        "/srv/ca/core.pem",
        True,
        8728,
        "mikrotik-001",
    )


def test_router_config_row_ca_pem_text_passed_as_is(pg_session: Session, ca_pem: str) -> None:
    _router(pg_session, tls=True, tls_ca=ca_pem.strip())
    config = router_config(pg_session, "mikrotik-001", DEFAULTS)
    assert config.cafile == ca_pem  # stored with its final newline, like the file
    assert config.endpoint_kwargs()["cafile"] == ca_pem


def test_router_config_row_never_borrows_the_settings_ca(pg_session: Session) -> None:
    _router(pg_session, tls=True)
    config = router_config(pg_session, "mikrotik-001", DEFAULTS)
    assert config.cafile is None and not config.from_settings


def test_router_config_default_router_takes_mikrotik_settings(pg_session: Session) -> None:
    config = router_config(pg_session, "mikrotik-009", DEFAULTS)
    assert config.from_settings
    assert (config.id, config.name, config.host, config.port, config.tls, config.cafile) == (
        "mikrotik-009",
        "mikrotik-009",
        "192.0.2.1",
        8729,
        True,
        SETTINGS_CA,
    )
    assert config.password == Secret("default-pass") and config.max_monitors is None


@pytest.mark.parametrize(
    ("value", "shown", "reason"),
    [
        ("certs/ca.pem", "'certs/ca.pem'", "must be an absolute path to a PEM file"),
        (
            "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----",
            "'-----BEGIN PRIVATE KEY-----'",
            "holds a private key",
        ),
        ("-----BEGIN CERTIFICATE-----\nMIIB", "'-----BEGIN CERTIFICATE-----'", "PEM text without a complete"),
        (42, "42", "must be a path to a CA file or the CA's PEM text"),
    ],
)
def test_router_tls_ca_bad_value_refused_naming_the_field(value: object, shown: str, reason: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        Router(id="r", name="r", host="h", tls_ca=value)
    assert caught.value.field == "tls_ca"
    assert str(caught.value).startswith(f"invalid tls_ca {shown}: {reason}")
    assert "MIGHAgEAMBMGByqGSM49" not in str(caught.value)  # key material is never echoed


def test_router_tls_ca_blank_is_none_and_pem_is_not_in_repr(ca_pem: str) -> None:
    assert Router(id="r", name="r", host="h", tls_ca="  ").tls_ca is None
    router = Router(id="r", name="r", host="h", tls_ca=ca_pem)
    assert "tls_ca=<PEM text>" in repr(router) and "BEGIN" not in repr(router)


def test_router_config_encoding_from_row_else_settings_reaches_the_endpoint(pg_session: Session) -> None:
    _router(pg_session, encoding="Windows-1252")
    config = router_config(pg_session, "mikrotik-001", DEFAULTS)
    assert RouterEndpoint(**config.endpoint_kwargs()).encoding == "cp1252"
    cyrillic = load_settings({"MIKROTIK_ENCODING": "cp1251"}, env_file="/nonexistent.env")
    assert router_config(pg_session, "no-row", cyrillic).encoding == "cp1251"
    assert router_config(pg_session, "no-row", DEFAULTS).encoding == "utf-8"


@pytest.mark.parametrize("value", ["utf-16", "klingon", 7])
def test_router_encoding_bad_value_refused_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        Router(id="r", name="r", host="h", encoding=value)
    assert caught.value.field == "encoding"
