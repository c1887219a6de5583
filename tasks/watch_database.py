"""The router watch's PostgreSQL work, in a thread of its own (tasks/watch.py).

Two jobs, neither on the watch's loop (a stalled database delays them, never a cycle,
and so never the lease, which is renewed only while the loop moves):
- the router's customers (`directory`, tasks/router_customers.py), re-read when the
  watch asks and swapped whole;
- `customers.last_online` (= now, the database's clock) and `assigned_ip` of the
  customers the watch saw online, coming or going: merged per customer between
  flushes, written in one UPDATE per WRITE_CHUNK customers when the watch flushes (at
  most once per cycle), never per event. A failed write keeps its rows for the next.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import uuid
from typing import Any

from sqlalchemy import case, func, literal, update

from common.backoff import Backoff
from models import Customer
from tasks import sessions
from tasks.router_customers import Directory, load_directory

log = logging.getLogger(__name__)

# At most this many rows per UPDATE.
WRITE_CHUNK = 500


class WatchDatabase:
    """The watch's PostgreSQL work, in a thread of its own: the router's customers
    (`directory`, swapped whole when re-read) and the batched `customers` writes."""

    def __init__(self, router_id: str) -> None:
        self.router_id = router_id
        self.directory: Directory | None = None
        self._cond = threading.Condition()
        self._seen: dict[str, str | None] = {}  # customer id -> address it was seen at (None: keep)
        self._flush = False
        self._reload = False
        self._closing = False
        self._thread: threading.Thread | None = None

    def load(self) -> None:
        """Read the router's customers now (in the caller's thread)."""
        with sessions.db() as s:
            self.directory = load_directory(s, self.router_id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"watch-db-{self.router_id}", daemon=True)
        self._thread.start()

    def seen(self, customer_id: str, address: str | None) -> None:
        """The customer was online (at `address`, None: keep the one recorded)."""
        with self._cond:
            if address or customer_id not in self._seen:
                self._seen[customer_id] = address

    def flush(self) -> None:
        with self._cond:
            if self._seen:
                self._flush = True
                self._cond.notify()

    def reload(self) -> None:
        with self._cond:
            self._reload = True
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closing, self._flush = True, bool(self._seen)
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        backoff = Backoff(1.0, 30.0)
        while True:
            with self._cond:
                while not (self._flush or self._reload or self._closing):
                    self._cond.wait()
                closing, reload = self._closing, self._reload and not self._closing
                batch: dict[str, str | None] = {}
                if self._flush:
                    batch, self._seen = self._seen, {}
                self._flush = self._reload = False
            try:
                if reload:
                    self.load()
                if batch:
                    write_seen(batch)
                backoff.reset()
            except Exception as exc:
                log.warning("router watch of %s: database work failed (retried): %s", self.router_id, exc)
                with self._cond:
                    for customer_id, address in batch.items():
                        self._seen.setdefault(customer_id, address)
                    self._reload = self._reload or reload
                if closing:
                    return
                # Retried with the next cycle's flush, not before this delay.
                time.sleep(backoff.next_delay())
            if closing:
                return


def write_seen(seen: dict[str, str | None]) -> int:
    """customers.last_online = now (the database's clock) and, where known,
    assigned_ip: one UPDATE per WRITE_CHUNK customers. Returns the rows updated."""
    items = list(seen.items())
    updated = 0
    with sessions.db() as s:
        for start in range(0, len(items), WRITE_CHUNK):
            chunk = items[start : start + WRITE_CHUNK]
            ids = [uuid.UUID(customer_id) for customer_id, _ in chunk]
            addresses = {uuid.UUID(c): a for c, a in chunk if a is not None and _is_address(a)}
            values: dict[str, Any] = {"last_online": func.now()}
            if addresses:
                ip_type = Customer.__table__.c.assigned_ip.type
                values["assigned_ip"] = case(
                    {cid: literal(address, ip_type) for cid, address in addresses.items()},
                    value=Customer.id,
                    else_=Customer.assigned_ip,
                )
            statement = update(Customer).where(Customer.id.in_(ids)).values(values)
            result = s.execute(statement.execution_options(synchronize_session=False))
            updated += int(getattr(result, "rowcount", 0) or 0)
    return updated


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
