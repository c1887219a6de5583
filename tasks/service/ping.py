"""ping(): a one-shot `/ping =count=N` from the customer's router to its current address.

The router pings, so the answer is the router→customer leg a support agent asks about
(docs/routeros.md, Ping). The address is the customer's static_ip, or for PPPoE and
hotspot the one its session holds now (`/ppp/active`, `/ip/hotspot/active`): a customer
with no session has none, and that is a refusal (CustomerOffline), not a row of timeouts.

The caller (a web route in a worker thread, or the CLI) gets one short-lived
RouterClient: one API session for a few seconds. The web process has no connection hub
of its own, and borrowing a monitors worker's would put a blocking request on it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from models import Customer
from models.enums import ServiceType
from models.resolution import MonitorTarget, resolve
from routeros import RouterClient, RouterEndpoint, RouterError, UnreachableError
from routeros.ping import PingParseError, PingReply, parse_ping_row
from tasks import sessions
from tasks.service.errors import DATABASE_ERRORS, DatabaseUnavailable

__all__ = [
    "MAX_PING_COUNT",
    "CustomerOffline",
    "InvalidPingCount",
    "RouterFailed",
    "RouterUnreachable",
    "ping",
]

MAX_PING_COUNT = 20
PING_INTERVAL_S = 1  # the router's default; one probe a second is what the agent reads
# Dial, log in and read the session: well inside the web's request budget. The ping
# itself gets count x interval plus this much for its last answer and the !done.
LOOKUP_TIMEOUT_S = 3.0
PING_SLACK_S = 3.0


class InvalidPingCount(ValueError):
    """`count` outside 1..MAX_PING_COUNT (400, naming the parameter)."""

    parameter = "count"

    def __init__(self, count: object) -> None:
        super().__init__(f"count must be between 1 and {MAX_PING_COUNT}, got {count!r}")


class CustomerOffline(RuntimeError):
    """The customer holds no address now (no PPPoE or hotspot session): 409."""

    def __init__(self, customer_id: object, username: str, detail: str) -> None:
        super().__init__(f"customer {username!r} is not online: {detail}")
        self.customer_id = str(customer_id)


class RouterUnreachable(RuntimeError):
    """The router did not answer (refused, timed out, connection lost): 503."""

    def __init__(self, router_id: str, error: RouterError) -> None:
        super().__init__(f"router {router_id!r} unreachable: {error}")
        self.router_id = router_id


class RouterFailed(RuntimeError):
    """The router answered, but not with a ping (refused login, `!trap`, garbage): 502."""

    def __init__(self, router_id: str, error: RouterError | PingParseError) -> None:
        super().__init__(f"router {router_id!r} refused the ping: {error}")
        self.router_id = router_id


@dataclass(frozen=True)
class _Who:
    target: MonitorTarget
    service_type: ServiceType
    static_ip: str | None
    login: str | None  # PPPoE / hotspot login to find the session by


def ping(customer_id: object, count: int = 4) -> dict[str, Any]:
    """Ping the customer from its router `count` times (1..20), one probe a second.

    {customer_id, username, address, count, replies: [{seq, rtt_ms, status}], sent,
    received, loss_pct, min_ms, avg_ms, max_ms}; rtt_ms null and status the router's
    words ("timeout", "host unreachable") for a lost probe; min/avg/max null when none
    was answered. Data-layer refusals (unknown customer...) pass through.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PING_COUNT:
        raise InvalidPingCount(count)
    who = _load(customer_id)
    config = who.target.router
    endpoint = RouterEndpoint(
        **{**config.endpoint_kwargs(), "timeout": min(config.timeout, LOOKUP_TIMEOUT_S)}
    )
    client = RouterClient(endpoint)
    try:
        client.connect()
        address = _address(client, who)
        rows = client.call(
            "/ping",
            {"address": address, "count": str(count), "interval": str(PING_INTERVAL_S)},
            timeout=count * PING_INTERVAL_S + PING_SLACK_S,
        )
        replies = [parse_ping_row(row) for row in rows]
    except UnreachableError as exc:
        raise RouterUnreachable(config.id, exc) from None
    except (RouterError, PingParseError) as exc:
        raise RouterFailed(config.id, exc) from None
    finally:
        client.close()
    return _answer(who.target, address, count, [r for r in replies if not r.summary])


def _load(customer_id: object) -> _Who:
    try:
        with sessions.db() as s:
            target = resolve(s, str(customer_id))
            row = s.get(Customer, target.customer_id)
            assert row is not None  # resolve() just read it in this transaction
            login = row.pppoe_username if row.service_type == ServiceType.PPPOE else None
            if row.service_type == ServiceType.HOTSPOT:
                login = row.hotspot_username or row.username  # as models/resolution.py reads it
            return _Who(target, ServiceType(row.service_type), row.static_ip, login)
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot ping: the database is unavailable ({type(exc).__name__})") from exc


def _address(client: RouterClient, who: _Who) -> str:
    if who.service_type == ServiceType.STATIC_IP:
        if not who.static_ip:
            raise CustomerOffline(who.target.customer_id, who.target.username, "it has no static_ip")
        return str(who.static_ip).split("/")[0]
    if who.service_type == ServiceType.PPPOE:
        menu, key = "/ppp/active/print", "name"
    else:
        menu, key = "/ip/hotspot/active/print", "user"
    rows = client.call(menu, queries=[f"?{key}={who.login}"], proplist=["address"], timeout=LOOKUP_TIMEOUT_S)
    address = next((row["address"] for row in rows if row.get("address")), None)
    if address is None:
        kind = "PPPoE" if who.service_type == ServiceType.PPPOE else "hotspot"
        raise CustomerOffline(
            who.target.customer_id,
            who.target.username,
            f"no {kind} session for {who.login!r} on router {who.target.router_id!r}",
        )
    return address


def _answer(target: MonitorTarget, address: str, count: int, replies: list[PingReply]) -> dict[str, Any]:
    answered = [r.rtt_ms for r in replies if r.rtt_ms is not None and r.status is None]
    sent = len(replies)
    # Our own totals from the probe rows: the same whether or not the router adds a
    # summary row, and whatever it rounds (docs/routeros.md, Ping).
    return {
        "customer_id": str(target.customer_id),
        "username": target.username,
        "router": target.router_id,
        "address": address,
        "count": count,
        "replies": [
            {"seq": r.seq, "rtt_ms": None if r.rtt_ms is None else round(r.rtt_ms, 3), "status": r.status}
            for r in replies
        ],
        "sent": sent,
        "received": len(answered),
        "loss_pct": round(100 * (sent - len(answered)) / sent, 2) if sent else None,
        "min_ms": round(min(answered), 3) if answered else None,
        "avg_ms": round(statistics.fmean(answered), 3) if answered else None,
        "max_ms": round(max(answered), 3) if answered else None,
    }
