"""Operator command line over the service functions: start, stop, status, tail.

    python -m tasks.cli start CUSTOMER [--by NAME]
    python -m tasks.cli stop CUSTOMER [--by NAME]
    python -m tasks.cli status [--json]
    python -m tasks.cli tail [--customer CUSTOMER] [--from ID] [--seconds S] [--json]

CUSTOMER is a customer id (UUID) or a username; a username that exists on more
than one router must be written `mikrotik_id/username`. Every refusal is one
line on stderr and a non-zero exit; nothing is left half-started.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from models import Customer
from models.resolution import ResolutionError
from tasks import keys, runtime, service, sessions
from tasks.message import decode_entry
from tasks.semaphore import AlreadyMonitored


class CliError(Exception):
    """A refusal to print as one line, with the exit code to use."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def customer_id_for(ref: str) -> str:
    """A customer's id from its UUID, `username` or `mikrotik_id/username`."""
    ref = ref.strip()
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    router, sep, username = ref.rpartition("/")
    query = select(Customer.id, Customer.mikrotik_id).where(Customer.username == username)
    if sep:
        query = query.where(Customer.mikrotik_id == router)
    with sessions.db() as s:
        rows = s.execute(query).all()
    if not rows:
        raise CliError(f"no customer with username {username!r}" + (f" on {router!r}" if sep else ""))
    if len(rows) > 1:
        routers = ", ".join(sorted(r.mikrotik_id for r in rows))
        raise CliError(
            f"username {username!r} exists on several routers ({routers}): write it as ROUTER/{username}"
        )
    return str(rows[0].id)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def cmd_start(args: argparse.Namespace) -> None:
    info = service.start(customer_id_for(args.customer), requested_by=args.by)
    verb = "started" if info.created else "already running"
    print(
        f"{verb}: session {info.session_id} (customer {info.customer_id}, router "
        f"{info.router_id}, task {info.task_id})"
    )


def cmd_stop(args: argparse.Namespace) -> None:
    info = service.stop(customer_id_for(args.customer), requested_by=args.by)
    print(f"stopping: session {info.session_id} (customer {info.customer_id})")


def cmd_status(args: argparse.Namespace) -> None:
    state = service.status()
    if args.json:
        _print_json(state)
        return
    print(
        f"monitors: {state['monitor_count']} live, {state['slots_available']} of "
        f"{state['max_concurrent']} slots free"
    )
    for m in state["monitors"]:
        live = "live" if m["live"] else "no lease"
        print(
            f"  {m['username']:<24} {m['actual_state']:<12} {live:<8} "
            f"router={m['router_id']} session={m['session_id']}"
        )


def _format_line(msg: dict[str, Any]) -> str:
    who = f"{msg.get('username', '?')}@{msg.get('router', '?')}"
    if msg.get("type") == "traffic":
        return (
            f"{msg['timestamp']} {who:<28} down {msg['download_speed']:>13}  "
            f"up {msg['upload_speed']:>13}  ({msg['interface']})"
        )
    reason = f" ({msg['reason']})" if msg.get("reason") else ""
    return f"{msg.get('timestamp', '')} {who:<28} {msg.get('type')}{reason}"


def cmd_tail(args: argparse.Namespace) -> None:
    stream = keys.customer_stream(customer_id_for(args.customer)) if args.customer else keys.COMBINED_STREAM
    client = runtime.current().redis
    last = args.from_id or "$"
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    while deadline is None or time.monotonic() < deadline:
        # BLOCK stays below the client's 5 s socket timeout.
        reply: Any = client.xread({stream: last}, count=500, block=1000)
        for _, entries in reply or ():
            for entry_id, fields in entries:
                last = entry_id
                msg = decode_entry(entry_id, fields)
                print(json.dumps(msg) if args.json else _format_line(msg), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, handler in (("start", cmd_start), ("stop", cmd_stop)):
        p = sub.add_parser(name, help=f"{name} monitoring a customer")
        p.add_argument("customer", help="customer id, username or ROUTER/username")
        p.add_argument("--by", default="cli", help="who asks (recorded on the session)")
        p.set_defaults(handler=handler)
    p = sub.add_parser("status", help="monitors that should run and their leases")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)
    p = sub.add_parser("tail", help="print samples and status events as they arrive")
    p.add_argument("--customer", help="only this customer (its own stream)")
    p.add_argument("--from", dest="from_id", help="resume after this stream id")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument("--json", action="store_true", help="one JSON message per line")
    p.set_defaults(handler=cmd_tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except ResolutionError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except (
        service.CapacityExceeded,
        service.MonitoringDisabled,
        service.NotMonitored,
        service.StartFailed,
        service.StorageFull,
        service.DatabaseUnavailable,
        AlreadyMonitored,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `tail | head`: the reader went away; that is the end, not an error. Point
        # stdout at nothing so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
