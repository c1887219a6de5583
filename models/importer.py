"""Import customers from a router: PPP secrets, HotSpot users, static simple queues.

    python -m models.importer --router mikrotik-001 [--host H --port P --user U
        --password-env VAR --tls --tls-mode M --cafile F --timeout S]
        [--with-passwords] [--database-url URL]

Connection details come from the `routers` row for --router (its CA: tls_ca),
else from the MIKROTIK_* settings (MIKROTIK_TLS_CAFILE), and any flag given here
wins: --cafile overrides the router's CA. The password is read from
an environment variable (never a flag, never printed). Idempotent: a second
run reports everything unchanged. Operator-owned columns are never overwritten
(see models.sync). One transaction: on a bad row nothing is written.

Customers' PPPoE and hotspot passwords are imported only with --with-passwords:
monitoring never needs them, and a copy of a secret is one more place it can leak
from. Without the flag they are not even asked of the router; new customers get
none (NULL) and passwords an earlier run stored are left as they are, neither
refreshed nor cleared (a run without the flag means "no new secrets", not "forget
the old ones": clear them with SQL or the API when that is what is meant).

This is the one models module that talks to a router, so it imports routeros.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models.cli_common import (
    db_error_text,
    fail,
    open_session,
    progress_printer,
    write_all_or_nothing,
)
from models.package import Package
from models.router_config import RouterConfig, router_config
from models.router_tables import (
    HOTSPOT_USER_PROPS,
    PROFILE_PROPS,
    QUEUE_PROPS,
    SECRET_PROPS,
    ImportPlan,
    RouterSnapshot,
    plan_import,
)
from models.sync import SyncCounts, upsert_customers, upsert_packages
from routeros import RouterClient, RouterEndpoint, RouterError, TrapError
from settings import Secret, SettingsError, TlsMode

T = TypeVar("T")

# Menus a router may lack (no hotspot package installed): a trap there means "none".
OPTIONAL_MENUS = ("/ip/hotspot/user/profile/print", "/ip/hotspot/user/print")
# The property of PPP secrets and hotspot users that holds the customer's password.
PASSWORD = "password"


def read_router(
    client: RouterClient, timeout: float, *, with_passwords: bool
) -> tuple[RouterSnapshot, list[str]]:
    """The router's customer tables; their `password` properties only when asked for."""
    notes: list[str] = []

    def read(command: str, proplist: tuple[str, ...]) -> list[dict[str, str]]:
        if not with_passwords:
            proplist = tuple(prop for prop in proplist if prop != PASSWORD)
        try:
            rows = client.call(command, proplist=proplist, timeout=timeout)
        except TrapError as exc:
            if command not in OPTIONAL_MENUS:
                raise
            notes.append(f"{command}: {exc} (treated as empty)")
            return []
        print(f"read {len(rows)} rows from {command}", file=sys.stderr, flush=True)
        if not with_passwords:
            # .proplist is a request: a router that answered with more still does not
            # get its passwords stored.
            rows = [{key: value for key, value in row.items() if key != PASSWORD} for row in rows]
        return rows

    snapshot = RouterSnapshot(
        ppp_profiles=read("/ppp/profile/print", PROFILE_PROPS),
        hotspot_profiles=read("/ip/hotspot/user/profile/print", PROFILE_PROPS),
        ppp_secrets=read("/ppp/secret/print", SECRET_PROPS),
        hotspot_users=read("/ip/hotspot/user/print", HOTSPOT_USER_PROPS),
        simple_queues=read("/queue/simple/print", QUEUE_PROPS),
    )
    return snapshot, notes


def _connection(args: argparse.Namespace, base: RouterConfig) -> RouterConfig:
    """`base` with every connection flag the operator gave applied over it."""
    password = base.password
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            fail(f"--password-env {args.password_env}: that environment variable is not set")
        password = Secret(value)
    return replace(
        base,
        host=_given(args.host, base.host),
        port=_given(args.port, base.port),
        username=_given(args.user, base.username),
        password=password,
        tls=args.tls or base.tls,
        tls_mode=_given(args.tls_mode, base.tls_mode),
        cafile=_given(args.cafile, base.cafile),
        timeout=_given(args.timeout, base.timeout),
    )


def _given(flag: T | None, default: T) -> T:
    return default if flag is None else flag


def _ca_source(config: RouterConfig, overridden: bool) -> str:
    if overridden:
        return "--cafile"
    return "MIKROTIK_TLS_CAFILE" if config.from_settings else "routers.tls_ca"


def _tls_hint(config: RouterConfig, ca_source: str, exc: RouterError) -> str:
    if not (config.tls and config.tls_mode == TlsMode.VERIFY):
        return ""
    if "cannot load" in str(exc):
        return f" (the CA came from {ca_source})"
    if "certificate" not in str(exc):
        return ""
    if config.cafile is None:
        return f" (no CA was given, so the system's CAs were used: set {ca_source} or pass --cafile)"
    return f" (the CA came from {ca_source}: is it the CA that signed the router's certificate?)"


def _check_cafile(config: RouterConfig, source: str) -> None:
    """A CA file that is not there fails here, naming where it came from, rather than
    deep inside the TLS set-up."""
    cafile = config.cafile
    if not (config.tls and config.tls_mode == TlsMode.VERIFY and cafile) or cafile.startswith("-----"):
        return
    if not os.path.isfile(cafile):
        fail(f"the router's CA file {cafile!r} ({source}) does not exist or is not a file")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.importer", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--router", required=True, help="router id, e.g. mikrotik-001 (customers.mikrotik_id)"
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--user")
    parser.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    parser.add_argument("--tls", action="store_true", help="use API-SSL")
    parser.add_argument("--tls-mode", choices=[mode.value for mode in TlsMode])
    parser.add_argument(
        "--cafile",
        help="CA for --tls-mode verify: a PEM file (default: the router's tls_ca, or MIKROTIK_TLS_CAFILE)",
    )
    parser.add_argument("--timeout", type=float, help="seconds per router command")
    parser.add_argument(
        "--with-passwords",
        action="store_true",
        help=(
            "also store the customers' PPPoE and hotspot passwords (monitoring never needs them). "
            "Without it, new customers get none, and passwords stored by an earlier run are left "
            "untouched (neither refreshed nor cleared)"
        ),
    )
    parser.add_argument("--database-url", help="default: settings (DATABASE_URL or DB_*)")
    args = parser.parse_args(argv)
    if not args.router.strip():
        fail("--router must not be empty")

    try:
        session = open_session(args.database_url)
        with session.begin():
            base = router_config(session, args.router)
    except SettingsError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot read the database: {db_error_text(exc)} (is it migrated? python -m models.migrate)")
    config = _connection(args, base)
    source = "routers table" if not base.from_settings else "MIKROTIK_* settings"
    print(f"importing from {config.username}@{config.host}:{config.port} ({source})", file=sys.stderr)
    ca_source = _ca_source(config, overridden=args.cafile is not None)
    _check_cafile(config, ca_source)

    try:
        endpoint = RouterEndpoint(**config.endpoint_kwargs())
    except ValueError as exc:
        fail(str(exc))
    client = RouterClient(endpoint)
    try:
        client.connect()
        snapshot, notes = read_router(client, config.timeout * 6, with_passwords=args.with_passwords)
    except RouterError as exc:
        where = f"router {args.router} ({config.host}:{config.port})"
        fail(f"{where}: {type(exc).__name__}: {exc}{_tls_hint(config, ca_source, exc)}")
    finally:
        client.close()
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    def write(session: Session) -> tuple[ImportPlan, SyncCounts, SyncCounts]:
        known = {(p.download_bps, p.upload_bps): p.name for p in session.scalars(select(Package))}
        plan = plan_import(snapshot, known)
        package_counts = upsert_packages(session, plan.packages)
        counts = upsert_customers(session, args.router, plan.records, progress=progress_printer("customers"))
        return plan, package_counts, counts

    plan, package_counts, counts = write_all_or_nothing(session, write)
    counts.skipped += plan.skipped
    for warning in plan.warnings + counts.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"packages: {package_counts.summary()}")
    print(f"customers: {counts.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
