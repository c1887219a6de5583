"""mtmon: the operator's command line (`python -m cli` works too).

    mtmon [--api URL] start CUSTOMER [--by NAME] [--no-ping]
    mtmon [--api URL] stop CUSTOMER [--by NAME]
    mtmon [--api URL] status [--json]
    mtmon [--api URL] customers [TEXT] [--router R] [--service-type T] [--status S]
                                [--monitored | --not-monitored] [--limit N] [--json]
    mtmon [--api URL] watch CUSTOMER [--seconds S]
    mtmon [--api URL] tail [--customer CUSTOMER] [--from ID] [--seconds S] [--json]
    mtmon [--api URL] ping CUSTOMER [--count N] [--json]
    mtmon [--api URL] sessions CUSTOMER [--limit N] [--json]
    mtmon [--api URL] report SESSION_ID [--json]
    mtmon import ROUTER [importer options]
    mtmon check-router ROUTER [--interface NAME]
    mtmon simulator [simulator options]

CUSTOMER is a customer id (UUID) or a username; a username that exists on more than
one router is written `mikrotik_id/username`. Without --api the commands talk to the
database and Redis (settings); with --api they call a running API, authenticated with
API_TOKEN from the environment. Every refusal is one line on stderr and a non-zero
exit; nothing is left half-started.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from cli.backends import Backend, CliError, backend
from cli.router_check import check_router
from models import importer
from models.resolution import ResolutionError
from routeros.simulator import __main__ as simulator
from settings import SettingsError
from tasks import service
from tasks.semaphore import SemaphoreError
from web.queries.customers import CustomerFilter

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 30

# Refusals the service layer raises: each is one line for the operator.
REFUSALS: tuple[type[BaseException], ...] = (
    service.CapacityExceeded,
    service.MonitoringDisabled,
    service.NotMonitored,
    service.StartFailed,
    service.StorageFull,
    service.DatabaseUnavailable,
    service.CustomerOffline,
    service.RouterFailed,
    service.RouterUnreachable,
    service.InvalidPingCount,
    SemaphoreError,
)


def cmd_start(api: Backend, args: argparse.Namespace) -> int:
    result = api.start(api.customer_id(args.customer), args.by, ping=args.ping)
    verb = "started" if result["message"] == "Monitoring started" else "already running"
    where = f"router {result.get('router')}, task {result.get('task_id')}"
    print(f"{verb}: session {result['session_id']} ({where})")
    return 0


def cmd_stop(api: Backend, args: argparse.Namespace) -> int:
    result = api.stop(api.customer_id(args.customer), args.by)
    print(f"stopping: session {result['session_id']}")
    return 0


def cmd_status(api: Backend, args: argparse.Namespace) -> int:
    state = api.status()
    if args.json:
        print(json.dumps(state, indent=2, default=str))
        return 0
    print(
        f"monitors: {state['monitor_count']} live, {state['slots_available']} of "
        f"{state['max_concurrent']} slots free"
    )
    for m in state["monitors"]:
        live = "live" if m["live"] else "no lease"
        where = f" worker={m['worker']}" if m.get("worker") else ""
        print(
            f"  {m['username']:<24} {m['state']:<12} {live:<8} router={m['router']} session={m['session_id']}"
            f"{where}"
        )
    return 0


def cmd_customers(api: Backend, args: argparse.Namespace) -> int:
    found = CustomerFilter(
        q=args.text,
        router=args.router,
        service_type=args.service_type,
        status=args.status,
        monitored=args.monitored,
    )
    page = api.customers(found, args.limit)
    if args.json:
        print(json.dumps(page, indent=2, default=str))
        return 0
    for c in page["customers"]:
        mark = "*" if c.get("monitored") else " "
        print(
            f"{mark} {c['username']:<24} {c['name']:<28} {c['service_type']:<10} {c['status']:<10} "
            f"{c['mikrotik_id']:<14} {c['id']}"
        )
    shown = len(page["customers"])
    # total_capped: the count stopped there (GET /api/customers); an older server omits it.
    total = f"{page['total']}+" if page.get("total_capped") else str(page["total"])
    print(f"{shown} of {total} customers" + (" (* monitored)" if shown else ""))
    return 0


def sparkline(values: Sequence[int]) -> str:
    if not values:
        return ""
    top = max(values) or 1
    return "".join(SPARK[min(len(SPARK) - 1, v * len(SPARK) // (top + 1))] for v in values)


def cmd_watch(api: Backend, args: argparse.Namespace) -> int:
    customer_id = api.customer_id(args.customer)
    history: deque[int] = deque(maxlen=SPARK_WIDTH)
    for message in api.entries(customer_id, "$", args.seconds):
        kind = message.get("type")
        when = str(message.get("timestamp", ""))[11:19]
        if kind == "traffic":
            history.append(int(message["download_bps"]))
            use = message.get("download_utilization")
            share = f" {use:5.1f}%" if isinstance(use, int | float) else ""
            print(
                f"{when} down {message['download_speed']:>13}{share}  up {message['upload_speed']:>13}  "
                f"{sparkline(list(history))}",
                flush=True,
            )
        elif kind:
            reason = f": {message['reason']}" if message.get("reason") else ""
            print(f"{when} {kind}{reason}", flush=True)
    return 0


def _format_line(msg: dict[str, Any]) -> str:
    who = f"{msg.get('username', '?')}@{msg.get('router', '?')}"
    if msg.get("type") == "traffic":
        return (
            f"{msg['timestamp']} {who:<28} down {msg['download_speed']:>13}  "
            f"up {msg['upload_speed']:>13}  ({msg['interface']})"
        )
    reason = f" ({msg['reason']})" if msg.get("reason") else ""
    return f"{msg.get('timestamp', '')} {who:<28} {msg.get('type')}{reason}"


def cmd_tail(api: Backend, args: argparse.Namespace) -> int:
    customer_id = api.customer_id(args.customer) if args.customer else None
    for msg in api.entries(customer_id, args.from_id or "$", args.seconds):
        print(json.dumps(msg) if args.json else _format_line(msg), flush=True)
    return 0


def cmd_ping(api: Backend, args: argparse.Namespace) -> int:
    result = api.ping(api.customer_id(args.customer), args.count)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"ping {result['username']} at {result['address']} from router {result['router']}:")
    for reply in result["replies"]:
        answer = f"{reply['rtt_ms']:.3f} ms" if reply["rtt_ms"] is not None else reply["status"]
        print(f"  seq={reply['seq']} {answer}")
    line = f"{result['sent']} sent, {result['received']} received, {result['loss_pct']:g}% loss"
    if result["avg_ms"] is not None:
        line += f"; rtt min/avg/max {result['min_ms']:.3f}/{result['avg_ms']:.3f}/{result['max_ms']:.3f} ms"
    print(line)
    return 0


def _ping_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= service.MAX_PING_COUNT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {service.MAX_PING_COUNT}, got {value}")
    return value


def _mbps(bps: int | None) -> str:
    return "-" if bps is None else f"{bps / 1e6:.2f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g} ms"


def _share(seconds: float | None, duration: float) -> str:
    return "-" if seconds is None or duration <= 0 else f"{100 * seconds / duration:.0f}%"


def report_line(r: dict[str, Any]) -> str:
    """One session report in a line: when, how long, download, RTT, verdict."""
    down, rtt = r["download"], r["rtt"]
    minutes, seconds = divmod(round(r["duration_s"]), 60)
    flags = " partial" if r["partial"] else ""
    return (
        f"{r['started_at'][:19]}Z {minutes:>4}m{seconds:02d}s  down avg {_mbps(down['avg_bps'])} "
        f"p95 {_mbps(down['p95_bps'])} Mbps, at plan {_share(down['at_plan_s'], r['duration_s'])}  "
        f"rtt idle {_ms(rtt['idle_median_ms'])} load {_ms(rtt['load_median_ms'])}  "
        f"{r['verdict'] or '-'}{flags}  {r['session_id']}"
    )


def cmd_sessions(api: Backend, args: argparse.Namespace) -> int:
    page = api.sessions(api.customer_id(args.customer), args.limit)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    for report in page["items"]:
        print(report_line(report))
    print(f"{len(page['items'])} of {page['total']} sessions")
    return 0


def cmd_report(api: Backend, args: argparse.Namespace) -> int:
    r = api.report(args.session_id)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"session {r['session_id']}: {r['username']} ({r['customer_name']}) on {r['router']} {r['interface']}"
    )
    print(
        f"  {r['started_at']} .. {r['ended_at']}  {r['duration_s']:g} s, {r['samples']} samples, "
        f"{r['missing_s']} s missing{', partial' if r['partial'] else ''}; stopped: {r['stop_reason']}"
    )
    plan = {"download": r["package_download_bps"], "upload": r["package_upload_bps"]}
    for direction in ("download", "upload"):
        d = r[direction]
        print(
            f"  {direction:<8} peak {_mbps(d['peak_bps'])}  avg {_mbps(d['avg_bps'])}  "
            f"p95 {_mbps(d['p95_bps'])} Mbps of {_mbps(plan[direction])}, {d['bytes']} bytes, "
            f"at plan {_share(d['at_plan_s'], r['duration_s'])}"
        )
    rtt = r["rtt"]
    loss = "-" if rtt["loss_pct"] is None else f"{rtt['loss_pct']:g}%"
    print(
        f"  rtt      {rtt['answered']}/{rtt['probes']} answered, loss {loss}, "
        f"median {_ms(rtt['median_ms'])}, p95 {_ms(rtt['p95_ms'])}; "
        f"idle {_ms(rtt['idle_median_ms'])}, load {_ms(rtt['load_median_ms'])}"
    )
    print(f"  verdict  {r['verdict'] or '-'}")
    return 0


def new_token() -> str:
    """43 characters from 32 random bytes: above settings.MIN_TOKEN_LENGTH, and safe in a
    header, a subprotocol name and a .env line alike."""
    return secrets.token_urlsafe(32)


def cmd_check_router(api: Backend, args: argparse.Namespace) -> int:
    return 0 if check_router(args.router, args.interface, print) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtmon",
        description="Operate the MikroTik traffic monitor: start, stop, watch and check.",
        epilog="Without --api: the database and Redis from the settings (environment, then .env).",
    )
    parser.add_argument(
        "--api", metavar="URL", help="call a running API instead (API_TOKEN from the environment)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[Backend, argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(handler=handler)
        return p

    for name, handler in (("start", cmd_start), ("stop", cmd_stop)):
        p = command(name, handler, f"{name} monitoring a customer")
        p.add_argument("customer", help="customer id, username or ROUTER/username")
        p.add_argument("--by", default="cli", help="who asks (recorded on the session)")
        if name == "start":
            p.add_argument(
                "--no-ping",
                dest="ping",
                action="store_false",
                help="run this session without the router-side ping (MONITOR_PING)",
            )
    p = command("status", cmd_status, "monitors that should run, and whether each holds its lease")
    p.add_argument("--json", action="store_true")
    p = command("customers", cmd_customers, "search customers (monitored ones first)")
    p.add_argument("text", nargs="?", help="part of a name, username or PPPoE/hotspot username")
    p.add_argument("--router", help="mikrotik_id")
    p.add_argument("--service-type", choices=("pppoe", "hotspot", "static_ip"))
    p.add_argument("--status", choices=("active", "suspended", "inactive", "pending"))
    monitored = p.add_mutually_exclusive_group()
    monitored.add_argument("--monitored", dest="monitored", action="store_const", const=True)
    monitored.add_argument("--not-monitored", dest="monitored", action="store_const", const=False)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p = command("watch", cmd_watch, "a customer's download and upload, live, once a second (Ctrl-C ends)")
    p.add_argument("customer", help="customer id, username or ROUTER/username")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p = command("tail", cmd_tail, "print samples and status events as they arrive")
    p.add_argument("--customer", help="only this customer (its own stream)")
    p.add_argument("--from", dest="from_id", help="resume after this stream id")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="one JSON message per line")
    p = command("ping", cmd_ping, "ping a customer's address from its router, one probe a second")
    p.add_argument("customer", help="customer id, username or ROUTER/username")
    p.add_argument(
        "--count", type=_ping_count, default=4, help=f"probes, 1..{service.MAX_PING_COUNT} (default 4)"
    )
    p.add_argument("--json", action="store_true", help="the API's JSON answer")
    p = command(
        "sessions", cmd_sessions, "a customer's past monitor sessions with their reports, newest first"
    )
    p.add_argument("customer", help="customer id, username or ROUTER/username")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="the API's answer")
    p = command("report", cmd_report, "the report of one ended monitor session")
    p.add_argument("session_id", help="the session's id (start prints it)")
    p.add_argument("--json", action="store_true", help="the API's answer")
    p = command("check-router", cmd_check_router, "log in to a router and check it can be monitored")
    p.add_argument("router", help="router id (customers.mikrotik_id)")
    p.add_argument("--interface", help="interface to try monitor-traffic on (default: the first running)")
    text = "print a new random API_TOKEN (256 bits, URL-safe) to put in the environment or .env"
    sub.add_parser("token", help=text, description=text)
    # These two hand their arguments to their own commands, which parse (and --help) them.
    sub.add_parser("import", help="import a router's customers (mtmon import --help)", add_help=False)
    sub.add_parser("simulator", help="run a simulated router (mtmon simulator --help)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["import"]:
        rest = argv[1:]
        if rest and not rest[0].startswith("-"):  # `mtmon import ROUTER`: the importer's --router
            rest = ["--router", *rest]
        return _delegate(lambda: importer.main(rest))
    if argv[:1] == ["simulator"]:
        return _delegate(lambda: simulator.main(argv[1:]))
    args = build_parser().parse_args(argv)
    if args.command == "token":
        # Needs no settings, database or Redis: made before anything is configured.
        print(new_token())
        return 0
    try:
        code: int = args.handler(backend(args.api), args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except ResolutionError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except REFUSALS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tail | head`: the reader went away; that is the end, not an error. Point
        # stdout at nothing so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def _delegate(run: Callable[[], int | None]) -> int:
    try:
        return run() or 0
    except KeyboardInterrupt:
        return 130
