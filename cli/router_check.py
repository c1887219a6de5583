"""`mtmon check-router ROUTER`: can the monitor work with this router? Before adding it.

Connects and logs in exactly as monitors will (the routers row, or MIKROTIK_* for an id
with no row), then reports what an operator needs to know: identity, version, uptime,
API sessions in use against `max-sessions` (every API tool on the router shares them,
docs/routeros.md, Services and max-sessions), whether API-SSL verifies, and whether a
`monitor-traffic` stream delivers on one interface.
"""

from __future__ import annotations

from collections.abc import Callable

from cli.backends import CliError
from models.router_config import RouterConfig, router_config
from routeros import RouterClient, RouterEndpoint, RouterError
from settings import TlsMode
from tasks import sessions
from tasks.message import format_bps

STREAM_WAIT = 5.0


def check_router(router_id: str, interface: str | None, say: Callable[[str], None]) -> bool:
    """Print one line per check; True when the monitor can work with this router."""
    with sessions.db() as s:
        config = router_config(s, router_id)
    source = "MIKROTIK_* settings" if config.from_settings else "routers table"
    say(f"router {router_id}: {config.username}@{config.host}:{config.port} ({source})")
    client = RouterClient(RouterEndpoint(**config.endpoint_kwargs()))
    try:
        client.connect()
    except RouterError as exc:
        raise CliError(f"cannot log in to {router_id}: {exc}") from None
    ok = True
    try:
        identity = _first(client, "/system/identity/print").get("name", "?")
        resource = _first(client, "/system/resource/print")
        say(f"identity: {identity}")
        say(f"version: {resource.get('version', '?')}, uptime {resource.get('uptime', '?')}")
        services = _services(client, say)
        ok &= _sessions(client, config, services, say)
        _tls(config, services, say)
        ok &= _stream(client, interface, say)
    finally:
        client.close()
    return ok


def _first(client: RouterClient, command: str) -> dict[str, str]:
    rows = client.call(command, timeout=5.0)
    return rows[0] if rows else {}


def _services(client: RouterClient, say: Callable[[str], None]) -> dict[str, dict[str, str]]:
    try:
        return {row.get("name", ""): row for row in client.call("/ip/service/print", timeout=5.0)}
    except RouterError as exc:
        say(f"services: cannot read /ip/service ({exc}): the API user needs read rights")
        return {}


def _sessions(
    client: RouterClient,
    config: RouterConfig,
    services: dict[str, dict[str, str]],
    say: Callable[[str], None],
) -> bool:
    service = "api-ssl" if config.tls else "api"
    try:
        active = client.call("/user/active/print", queries=(f"?via={service}",), timeout=5.0)
    except RouterError as exc:
        say(f"API sessions: cannot read /user/active ({exc}): the API user needs read rights")
        return True
    limit = services.get(service, {}).get("max-sessions")
    if limit is None:
        say(f"API sessions: {len(active)} in use ({service}; this RouterOS has no max-sessions, before 7.16)")
        return True
    free = int(limit) - len(active)
    say(f"API sessions: {len(active)} of {limit} in use ({service}), {free} free")
    if free < 1:
        say("  every session is taken: monitors cannot log in until another tool logs out")
        return False
    return True


def _tls(config: RouterConfig, services: dict[str, dict[str, str]], say: Callable[[str], None]) -> None:
    if not config.tls:
        ssl_service = services.get("api-ssl", {})
        if ssl_service.get("disabled", "true") in ("true", "yes"):
            say("API-SSL: disabled on the router (the plain API carries the password in clear text)")
            return
        port = int(ssl_service.get("port", "8729"))
        trial = RouterEndpoint(
            **{**config.endpoint_kwargs(), "tls": True, "port": port, "tls_mode": "verify"}
        )
        probe = RouterClient(trial)
        try:
            probe.connect()
            say(f"API-SSL: enabled on port {port}, certificate verifies (set the row's tls to use it)")
        except RouterError as exc:
            say(f"API-SSL: enabled on port {port}, does not verify: {exc}")
        finally:
            probe.close()
        return
    if config.tls_mode != TlsMode.VERIFY:
        say(f"API-SSL: in use, certificate NOT verified (tls_mode {config.tls_mode})")
        return
    # The login above already verified it (verify mode refuses an untrusted certificate).
    say("API-SSL: in use, certificate verified" + (" with the router's CA" if config.cafile else ""))


def _stream(client: RouterClient, interface: str | None, say: Callable[[str], None]) -> bool:
    if interface is None:
        rows = client.call(
            "/interface/print", queries=("?running=true",), proplist=("name", "type"), timeout=5.0
        )
        if not rows:
            say("monitor-traffic: no running interface to try it on (give one with --interface)")
            return False
        interface = rows[0]["name"]
    stream = client.stream(
        "/interface/monitor-traffic",
        {"interface": interface, "interval": "1"},
        proplist=("name", "rx-bits-per-second", "tx-bits-per-second"),
    )
    try:
        event = stream.get(timeout=STREAM_WAIT)
        while event is not None and event.kind not in ("data", "trap", "failed", "done"):
            event = stream.get(timeout=STREAM_WAIT)
    finally:
        stream.cancel()
    if event is None:
        say(f"monitor-traffic on {interface}: no sample within {STREAM_WAIT:g}s")
        return False
    if event.kind != "data" or event.data is None:
        say(f"monitor-traffic on {interface}: refused: {event.message or event.kind}")
        return False
    rx = int(event.data.get("rx-bits-per-second", "0"))
    tx = int(event.data.get("tx-bits-per-second", "0"))
    say(f"monitor-traffic on {interface}: ok (router receives {format_bps(rx)}, sends {format_bps(tx)})")
    return True
