"""python -m routeros.simulator: run a simulated RouterOS router until interrupted."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from .config import DROP_MODES, SimulatorConfig, parse_version
from .server import Simulator
from .words import TAG_POSITIONS

DEFAULT_PASSWORD_ENV = "MIKROTIK_PASS"
DEFAULT_PASSWORD = "admin"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100000, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {value:g}")
    return value


def _version(text: str) -> str:
    try:
        parse_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class _RefusePassword(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "--password was removed (the command line is visible in `ps`): put the password in an "
            f"environment variable, {DEFAULT_PASSWORD_ENV} by default, or name one with --password-env VAR"
        )


def _password(parser: argparse.ArgumentParser, variable: str | None) -> str:
    """The API password from the environment; never from the command line, never printed."""
    if variable is not None:
        password = os.environ.get(variable)
        if password is None:
            parser.error(f"--password-env: environment variable {variable} is not set")
        return password
    password = os.environ.get(DEFAULT_PASSWORD_ENV)
    if password is None:
        print(
            f"{DEFAULT_PASSWORD_ENV} is not set: the simulated router's API password is {DEFAULT_PASSWORD!r}",
            file=sys.stderr,
            flush=True,
        )
        return DEFAULT_PASSWORD
    return password


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m routeros.simulator",
        description="Simulated MikroTik RouterOS API server (load generator and demo).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--advertise-host",
        default=None,
        help="host written into --customers-json (default: --host, or 127.0.0.1 for 0.0.0.0)",
    )
    p.add_argument("--port", type=_port, default=8728, help="API port (default 8728; 0 = any free port)")
    p.add_argument("--tls-port", type=_port, default=None, help="also serve API-SSL on this port")
    p.add_argument(
        "--tls-mode",
        choices=("cert", "anon-dh"),
        default="cert",
        help="API-SSL with a generated self-signed certificate, or anonymous DH",
    )
    p.add_argument(
        "--cert-dir", default=None, help="where to write the generated certificate (default: temp dir)"
    )
    p.add_argument("--pppoe", type=_count, default=50, help="PPPoE customers (default 50)")
    p.add_argument("--hotspot", type=_count, default=5, help="hotspot customers (default 5)")
    p.add_argument("--static", type=_count, default=5, help="static-IP customers (default 5)")
    p.add_argument("--user", default="admin", help="API user name (default admin)")
    p.add_argument(
        "--password-env",
        metavar="VAR",
        default=None,
        help=f"environment variable holding the API password; it must be set (default: "
        f"{DEFAULT_PASSWORD_ENV}, and {DEFAULT_PASSWORD!r} when that is unset)",
    )
    # A password on the command line is visible to every user in `ps`: refused by name,
    # so an old invocation fails with the way out instead of "unrecognized arguments".
    p.add_argument("--password", action=_RefusePassword, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help="seed for customers and traffic (default 1)")
    p.add_argument(
        "--version", type=_version, default="7.24", help="RouterOS version to emulate (default 7.24)"
    )
    p.add_argument("--identity", default="sim-router", help="/system/identity name")
    p.add_argument("--max-sessions", type=int, default=20, help="max API sessions per service (default 20)")
    p.add_argument(
        "--drop-mode",
        choices=DROP_MODES,
        default="trap",
        help="what a monitor sees when its PPPoE session drops (default trap)",
    )
    p.add_argument(
        "--tag-position",
        choices=TAG_POSITIONS,
        default="first",
        help="where .tag goes in replies: first (after the reply word, as routers do) or last",
    )
    p.add_argument(
        "--text-encoding",
        default="utf-8",
        help="how the router holds names beyond ASCII: utf-8, or a Winbox code page such as cp1252",
    )
    p.add_argument(
        "--saturate",
        metavar="USER",
        action="append",
        default=[],
        help="drive this customer to its plan (repeatable): see --saturate-seconds/--saturate-every",
    )
    p.add_argument(
        "--saturate-seconds",
        type=_seconds,
        default=40.0,
        help="how long each --saturate episode lasts (default 40)",
    )
    p.add_argument(
        "--saturate-every",
        type=_seconds,
        default=120.0,
        help="one episode per this many seconds, each ending on the period's boundary "
        "(default 120; 0 = at the plan all the time)",
    )
    p.add_argument(
        "--customers-json",
        metavar="FILE",
        default=None,
        help="write the simulated router and customers to FILE (for seeding a database)",
    )
    return p


def _drive_to_plan(
    sim: Simulator, users: list[str], seconds: float, every: float, stop: threading.Event
) -> None:
    """Hold ``users`` at their plan for ``seconds`` at the end of every ``every`` seconds
    (so the first episode starts ``every - seconds`` in: the line is first seen at its own
    pace); with ``every`` 0, at the plan until stopped. Returns when ``stop`` is set."""
    if not every:
        for user in users:
            sim.saturate(user)
        print(f"saturating {', '.join(users)} until stopped", flush=True)
        return
    print(f"saturating {', '.join(users)} for {seconds:g} s of every {every:g} s", flush=True)
    next_at = time.monotonic() + every - seconds
    while not stop.wait(max(0.0, next_at - time.monotonic())):
        for user in users:
            sim.saturate(user, seconds=seconds)
        next_at += every


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    password = _password(parser, args.password_env)
    try:
        config = SimulatorConfig(
            pppoe=args.pppoe,
            hotspot=args.hotspot,
            static=args.static,
            user=args.user,
            password=password,
            seed=args.seed,
            version=args.version,
            identity=args.identity,
            host=args.host,
            port=args.port,
            advertise_host=args.advertise_host,
            tls=args.tls_port is not None,
            ssl_port=args.tls_port or 0,
            tls_mode=args.tls_mode,
            max_sessions=args.max_sessions,
            drop_mode=args.drop_mode,
            tag_position=args.tag_position,
            text_encoding=args.text_encoding,
            cert_dir=args.cert_dir,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.saturate and args.saturate_every and args.saturate_seconds >= args.saturate_every:
        parser.error("--saturate-seconds must be shorter than --saturate-every (or --saturate-every 0)")
    if args.saturate and not args.saturate_seconds:
        parser.error("--saturate-seconds must be more than 0")
    if args.customers_json:
        parent = os.path.dirname(os.path.abspath(args.customers_json))
        if not os.path.isdir(parent):
            parser.error(f"--customers-json: directory {parent} does not exist")
    sim = Simulator(config)
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        known = {c["username"] for c in sim.customers()["customers"]}
        unknown = [u for u in args.saturate if u not in known]
        if unknown:
            print(f"error: --saturate: no customer {', '.join(unknown)}", file=sys.stderr)
            return 2
        if args.customers_json:
            sim.write_customers_json(args.customers_json)
        line = f"RouterOS {config.version} simulator listening on api://{sim.host}:{sim.port}"
        if sim.ssl_port is not None:
            line += f" and api-ssl://{sim.host}:{sim.ssl_port} ({config.tls_mode}"
            line += f", ca {sim.cafile})" if sim.cafile else ")"
        line += f"; {config.pppoe} pppoe, {config.hotspot} hotspot, {config.static} static customers"
        print(line, flush=True)
        if args.saturate:
            _drive_to_plan(sim, args.saturate, args.saturate_seconds, args.saturate_every, stop)
        stop.wait()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
