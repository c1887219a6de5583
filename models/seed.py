"""Seed packages, the router row and customers from the simulator's customers JSON.

    python -m models.seed --customers-json var/customers.json --mikrotik-id mikrotik-001 \
        [--router-host H] [--router-port P] [--router-user U] [--router-password-env VAR] \
        [--router-tls --router-tls-mode M --router-tls-ca CA] [--router-encoding ENC]

Idempotent: a second run with the same file creates nothing and says so. The
router password comes from an environment variable (default MIKROTIK_PASS),
never from the command line, and is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from models.cli_common import fail, open_session, progress_printer, write_all_or_nothing
from models.sync import (
    CustomerRecord,
    PackageSpec,
    SyncCounts,
    upsert_customers,
    upsert_packages,
    upsert_router,
)
from settings import SettingsError, TlsMode, get_settings

CUSTOMER_FIELDS = (
    "username",
    "service_type",
    "name",
    "phone",
    "email",
    "pppoe_username",
    "pppoe_password",
    "pppoe_profile",
    "hotspot_username",
    "hotspot_password",
    "hotspot_mac_address",
    "static_ip",
    "mac_address",
    "package",
)


def load_customers_json(path: Path) -> dict[str, Any]:
    """Parse and shape-check the file; raises ValueError naming what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object with 'packages' and 'customers'")
    for key in ("packages", "customers"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: '{key}' must be a list")
    if data.get("router") is not None and not isinstance(data["router"], dict):
        raise ValueError(f"{path}: 'router' must be an object")
    return data


def package_specs(data: dict[str, Any]) -> list[PackageSpec]:
    specs = []
    for i, item in enumerate(data["packages"]):
        try:
            specs.append(PackageSpec(str(item["name"]), int(item["download_bps"]), int(item["upload_bps"])))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"packages[{i}]: needs name, download_bps and upload_bps (integers)") from None
    return specs


def customer_records(data: dict[str, Any]) -> list[CustomerRecord]:
    records = []
    for i, item in enumerate(data["customers"]):
        if not isinstance(item, dict) or not item.get("username") or not item.get("service_type"):
            raise ValueError(f"customers[{i}]: needs at least username and service_type")
        # Any: JSON values, checked to be text (or absent) just below.
        values: dict[str, Any] = {k: item.get(k) for k in CUSTOMER_FIELDS}
        for key, value in values.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"customers[{i}]: {key} must be a string")
        records.append(CustomerRecord(**values, source=f"customers[{i}] ({item['username']!r})"))
    return records


def tls_ca(value: str, source: str) -> str:
    """A CA as the routers row stores it: PEM text as given, a file as its absolute
    path (workers resolve nothing relative). A file that is not there fails now, not
    at the first monitor."""
    if not value.strip() or value.lstrip().startswith("-----"):
        return value
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        fail(f"{source} {value}: no such file")
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--customers-json", required=True, type=Path)
    parser.add_argument("--mikrotik-id", required=True, help="router id the customers belong to")
    parser.add_argument("--router-host", help="default: the JSON's router.host")
    parser.add_argument("--router-port", type=int, help="default: the JSON's router.port")
    parser.add_argument("--router-user", help="default: MIKROTIK_USER")
    parser.add_argument("--router-name", help="default: the JSON's router.identity")
    parser.add_argument(
        "--router-password-env",
        default="MIKROTIK_PASS",
        metavar="VAR",
        help="environment variable holding the router password (default MIKROTIK_PASS)",
    )
    parser.add_argument("--router-tls", action="store_true", help="use API-SSL")
    parser.add_argument("--router-tls-mode", choices=[mode.value for mode in TlsMode])
    parser.add_argument(
        "--router-tls-ca",
        metavar="CA",
        help="the CA that signs the router's API-SSL certificate: a PEM file (stored as its absolute "
        "path) or the PEM text; '' clears it (default: MIKROTIK_TLS_CAFILE)",
    )
    parser.add_argument(
        "--router-encoding",
        metavar="ENC",
        help="how the router holds names beyond ASCII: utf-8, or the Winbox code page such as "
        "cp1252 (default: MIKROTIK_ENCODING)",
    )
    parser.add_argument("--max-monitors", type=int, help="per-router monitor cap")
    parser.add_argument(
        "--max-api-sessions",
        type=int,
        help="API sessions on this router from all monitors workers (default: ROUTER_MAX_API_SESSIONS)",
    )
    parser.add_argument("--database-url", help="default: settings (DATABASE_URL or DB_*)")
    args = parser.parse_args(argv)

    try:
        settings = get_settings()
        data = load_customers_json(args.customers_json)
        packages = package_specs(data)
        records = customer_records(data)
    except (ValueError, SettingsError) as exc:
        fail(str(exc))
    router_json = data.get("router") or {}
    host = args.router_host or router_json.get("host")
    port = args.router_port or router_json.get("port")
    if not host or not port:
        fail(
            "the router's host and port are needed: pass --router-host/--router-port "
            "or put them in the JSON's 'router'"
        )
    password = os.environ.get(args.router_password_env)
    if args.router_tls_ca is not None:
        ca, ca_source = args.router_tls_ca, "--router-tls-ca"
    else:
        ca, ca_source = settings.mikrotik_tls_cafile, "MIKROTIK_TLS_CAFILE"
    router_fields: dict[str, Any] = {
        "name": args.router_name or router_json.get("identity") or args.mikrotik_id,
        "host": host,
        "port": int(port),
        "username": args.router_user or settings.mikrotik_user,
        "password": password if password is not None else settings.mikrotik_pass,
        "tls": args.router_tls or settings.mikrotik_tls,
        "tls_mode": args.router_tls_mode or settings.mikrotik_tls_mode,
        "tls_ca": None if ca is None else tls_ca(ca, ca_source),
        "encoding": args.router_encoding or settings.mikrotik_encoding,
    }
    if args.max_monitors is not None:
        router_fields["max_monitors"] = args.max_monitors
    if args.max_api_sessions is not None:
        router_fields["max_api_sessions"] = args.max_api_sessions

    def write(session: Session) -> tuple[str, SyncCounts, SyncCounts]:
        router = upsert_router(session, args.mikrotik_id, **router_fields)
        package_counts = upsert_packages(session, packages)
        counts = upsert_customers(session, args.mikrotik_id, records, progress=progress_printer("customers"))
        return router, package_counts, counts

    router, package_counts, counts = write_all_or_nothing(open_session(args.database_url), write)
    for warning in counts.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"router {args.mikrotik_id}: {router}")
    print(f"packages: {package_counts.summary()}")
    print(f"customers: {counts.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
