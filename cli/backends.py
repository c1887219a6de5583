"""Where the command line gets its answers: the database and Redis directly (on a host
of the deployment), or a running API (`--api URL`, with API_TOKEN from the environment).

Both backends speak the same dictionaries, the REST API's: the local one builds them
with the web's own queries and shapes (web/queries, which import no Starlette), so every
command finds the same customers and prints the same whichever it uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from common import redis_clients
from models import Customer
from settings import get_settings
from tasks import keys, runtime, service, sessions
from tasks.message import LATENCY, ROUTER_TYPES, decode_entry
from web.queries import customers as customer_queries
from web.queries import monitors as monitor_queries
from web.queries import reports as report_queries
from web.queries.customers import CustomerFilter

# What /ws leaves out when a client names no types: the router watches' entries, pings.
QUIET_TYPES = frozenset({*ROUTER_TYPES, LATENCY})


class CliError(Exception):
    """A refusal to print as one line, with the exit code to use."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Backend(Protocol):
    def customer_id(self, ref: str) -> str: ...
    def start(self, customer_id: str, by: str, ping: bool = True) -> dict[str, Any]: ...
    def stop(self, customer_id: str, by: str) -> dict[str, Any]: ...
    def status(self) -> dict[str, Any]: ...
    def customers(self, found: CustomerFilter, limit: int) -> dict[str, Any]: ...
    def entries(
        self, customer_id: str | None, after: str, seconds: float | None
    ) -> Iterator[dict[str, Any]]: ...
    def ping(self, customer_id: str, count: int) -> dict[str, Any]: ...
    def sessions(self, customer_id: str, limit: int) -> dict[str, Any]: ...
    def report(self, session_id: str) -> dict[str, Any]: ...


def _as_uuid(ref: str) -> str | None:
    try:
        return str(uuid.UUID(ref.strip()))
    except ValueError:
        return None


def _session_uuid(ref: str) -> uuid.UUID:
    try:
        return uuid.UUID(ref.strip())
    except ValueError:
        raise CliError(f"not a session id (a UUID): {ref[:60]!r}") from None


def _one(ref: str, matches: list[tuple[str, str]]) -> str:
    """The id among (id, router) matches of a username reference, or a clear refusal."""
    router, sep, username = ref.strip().rpartition("/")
    if sep:
        matches = [m for m in matches if m[1] == router]
    if not matches:
        raise CliError(f"no customer with username {username!r}" + (f" on {router!r}" if sep else ""))
    if len(matches) > 1:
        routers = ", ".join(sorted(r for _, r in matches))
        raise CliError(
            f"username {username!r} exists on several routers ({routers}): write it as ROUTER/{username}"
        )
    return matches[0][0]


class LocalBackend:
    """The service functions, the database and Redis, as the web process uses them."""

    def customer_id(self, ref: str) -> str:
        found = _as_uuid(ref)
        if found is not None:
            return found
        username = ref.strip().rpartition("/")[2]
        with sessions.db() as s:
            rows = s.execute(
                select(Customer.id, Customer.mikrotik_id).where(Customer.username == username)
            ).all()
        return _one(ref, [(str(r.id), r.mikrotik_id) for r in rows])

    def start(self, customer_id: str, by: str, ping: bool = True) -> dict[str, Any]:
        return monitor_queries.started_json(service.start(customer_id, requested_by=by, ping=ping))

    def stop(self, customer_id: str, by: str) -> dict[str, Any]:
        return monitor_queries.stopped_json(service.stop(customer_id, requested_by=by))

    def status(self) -> dict[str, Any]:
        snapshot = monitor_queries.snapshot(sessions.db, get_settings())
        last = asyncio.run(_newest_entry_times([m["customer_id"] for m in snapshot["monitors"]]))
        return monitor_queries.status_json(snapshot, last)

    def customers(self, found: CustomerFilter, limit: int) -> dict[str, Any]:
        # monitored_first: the order `--api` asks for too.
        with sessions.db() as s:
            page = customer_queries.list_customers(s, found, limit=limit, offset=0, monitored_first=True)
        return customer_queries.page_json(page, limit=limit, offset=0)

    def ping(self, customer_id: str, count: int) -> dict[str, Any]:
        return service.ping(customer_id, count)

    def sessions(self, customer_id: str, limit: int) -> dict[str, Any]:
        with sessions.db() as s:
            items, total = report_queries.list_reports(s, uuid.UUID(customer_id), limit=limit)
        return report_queries.page_json(items, total, limit=limit, offset=0)

    def report(self, session_id: str) -> dict[str, Any]:
        try:
            with sessions.db() as s:
                return report_queries.get_report(s, _session_uuid(session_id))
        except (report_queries.SessionNotFound, report_queries.ReportNotFound) as exc:
            raise CliError(str(exc)) from None

    def entries(self, customer_id: str | None, after: str, seconds: float | None) -> Iterator[dict[str, Any]]:
        stream = keys.customer_stream(customer_id) if customer_id else keys.COMBINED_STREAM
        client = runtime.current().redis
        last = after
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            # BLOCK stays below the client's 5 s socket timeout.
            reply: Any = client.xread({stream: last}, count=500, block=1000)
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id
                    entry = decode_entry(entry_id, fields)
                    if entry.get("type") not in QUIET_TYPES:  # as /ws without types= (the --api way)
                        yield entry


class ApiBackend:
    """A running API, as a billing panel would call it."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base = base_url.rstrip("/")
        self.token = token

    def _call(self, method: str, path: str, *, wait: float = 15.0, **params: Any) -> dict[str, Any]:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        request = urllib.request.Request(f"{self.base}{path}{'?' + query if query else ''}", method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=wait) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("message", exc.reason)
            except ValueError:
                detail = exc.reason
            raise CliError(f"{detail} (HTTP {exc.code})") from None
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach the API at {self.base}: {exc.reason}") from None

    def customer_id(self, ref: str) -> str:
        found = _as_uuid(ref)
        if found is not None:
            return found
        username = ref.strip().rpartition("/")[2]
        page = self._call("GET", "/api/customers", q=username, limit=500)
        return _one(
            ref, [(c["id"], c["mikrotik_id"]) for c in page["customers"] if c["username"] == username]
        )

    def start(self, customer_id: str, by: str, ping: bool = True) -> dict[str, Any]:
        # Only when asked: an API older than the ping would refuse an unknown parameter.
        return self._call(
            "POST", "/api/monitor/start", customer_id=customer_id, ping=None if ping else "false"
        )

    def stop(self, customer_id: str, by: str) -> dict[str, Any]:
        return self._call("POST", "/api/monitor/stop", customer_id=customer_id)

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/api/monitor/status")

    def customers(self, found: CustomerFilter, limit: int) -> dict[str, Any]:
        monitored = None if found.monitored is None else str(found.monitored).lower()
        return self._call(
            "GET",
            "/api/customers",
            q=found.q,
            router=found.router,
            service_type=found.service_type,
            status=found.status,
            monitored=monitored,
            monitored_first="true",
            limit=limit,
        )

    def ping(self, customer_id: str, count: int) -> dict[str, Any]:
        # The answer takes about `count` seconds: wait that long and a little more.
        return self._call("GET", f"/api/customers/{customer_id}/ping", wait=count + 15.0, count=count)

    def sessions(self, customer_id: str, limit: int) -> dict[str, Any]:
        return self._call("GET", f"/api/customers/{customer_id}/sessions", limit=limit)

    def report(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/sessions/{_session_uuid(session_id)}")

    def entries(self, customer_id: str | None, after: str, seconds: float | None) -> Iterator[dict[str, Any]]:
        scheme, _, rest = self.base.partition("://")
        params = {"customer_id": customer_id, "last_id": None if after == "$" else after}
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws{'?' + query if query else ''}"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            with connect(url, additional_headers=headers, open_timeout=10) as ws:
                while deadline is None or time.monotonic() < deadline:
                    wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
                    try:
                        message = json.loads(ws.recv(timeout=wait))
                    except TimeoutError:
                        continue
                    if message.get("type") not in ("ping", "gap"):
                        yield message
        except ConnectionClosed as exc:
            raise CliError(f"the live feed closed: {exc}") from None
        except OSError as exc:
            raise CliError(f"cannot open the live feed at {url}: {exc}") from None


async def _newest_entry_times(customer_ids: list[str]) -> dict[str, str | None]:
    """The status route's read of each stream's newest entry, on a client of our own
    (the route's is the web process's)."""
    client = redis_clients.async_client(
        redis_clients.ClientOptions(socket_timeout=5, socket_connect_timeout=5), get_settings()
    )
    try:
        return await monitor_queries.newest_entry_times(client, customer_ids)
    finally:
        await client.aclose()


def backend(api: str | None) -> Backend:
    if api:
        return ApiBackend(api, os.environ.get("API_TOKEN") or None)
    return LocalBackend()
