"""The router watch task: one per router, the whole router's view for a few commands.

One run holds its router's watch lease (tasks/watch_lifecycle.py names the parts):

1. wanted?  A message older than its expiry, or ROUTER_WATCH=false, ends at once.
2. claim    The run claims the reservation the reconciler made (one watch per router:
            a second delivery finds it claimed and ends), then registers with the
            process's lease keeper, which renews it and sees its stop key.
3. loop     On the process's shared router connection (tasks/hub.py), like the
            monitors of that process:
            - sessions: `/ppp/active/listen` then `/ppp/active/print`, the same for
              `/ip/hotspot/active` where the router has hotspot (a trap on it: no
              hotspot, not asked again); listen rows are applied as they come and a
              known customer's `session_up` / `session_down` is published at once
              (tasks/session_table.py);
            - every ROUTER_WATCH_INTERVAL: ONE `/interface/print ?type=pppoe-in` and ONE
              `/queue/simple/print`, both with `=.proplist=`: every customer's rate from
              byte-counter deltas (tasks/rates.py, tasks/router_view.py), the top frame
              (totals and the top ROUTER_TOP_N customers by download) and the router's
              view for the REST routes (tasks/watch_publisher.py, fenced like samples).
            So a cycle costs the router two commands, whatever the number of customers.
4. end      stop key (router removed, ROUTER_WATCH=false), revoke, worker shutdown or
            lease lost: the lease is released (not when lost) and the reconciler starts
            the next watch wherever a thread is free.

PostgreSQL is only touched off the loop, by the run's own thread (tasks/watch_database.py): the
router's customers are re-read every REFRESH_SECONDS (or soon after an unknown login
appears, in case it is a new customer), and `customers.last_online` / `assigned_ip`
are written in one UPDATE per batch, at most once per cycle, never per event. A
stalled database delays those writes, never a cycle (or, through it, the lease).

Router trouble (unreachable, login refused) keeps the lease and retries when the hub
retries the router; the view says why meanwhile (`status: offline`, `reason`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import redis
from celery.exceptions import Ignore

from common.backoff import Backoff
from routeros import LoginError, RouterEndpoint, RouterError, Stream, TrapError
from settings import get_settings
from tasks import alert_hooks, keys, lifecycle, runtime
from tasks.alert_eval import RouterEvaluator, Transition
from tasks.app import app
from tasks.hub import RouterHandle, get_hub
from tasks.keys import customer_owner, watch_stop
from tasks.leases import LeaseHandle
from tasks.lifecycle import LEASE_LOST, NOT_WANTED, REVOKED, WORKER_SHUTDOWN
from tasks.message import SESSION_DOWN, SESSION_UP, MessageError, RouterMeta, session_entry, top_entries
from tasks.monitor import DENIED_BACKOFF_INITIAL, DENIED_BACKOFF_MAX, router_trouble
from tasks.rates import CounterRates
from tasks.router_customers import Directory
from tasks.router_view import (
    INTERFACE_PROPLIST,
    INTERFACE_QUERY,
    QUEUE_PROPLIST,
    Rates,
    build_view,
    interface_rates,
    queue_rates,
    top_json,
)
from tasks.semaphore import WATCHES, SemaphoreError
from tasks.session_table import HOTSPOT_PROPLIST, PPP_PROPLIST, Session, SessionKind, SessionTable
from tasks.watch_database import WatchDatabase
from tasks.watch_lifecycle import DISABLED, NO_CAP, WATCH_TASK, semaphore, task_id_of
from tasks.watch_publisher import Entry, WatchPublisher
from tasks.worker import shutting_down

log = logging.getLogger(__name__)

# Waits that nothing wakes (the shared connection logging in): short.
OPEN_WAIT = 0.2
# Longest wait for a listen row before the loop looks around (stop, next cycle). A stop
# does not wait for it: the stop event wakes the PPP listen's read.
LISTEN_WAIT = 0.25
# A listen stream must never drop a row (a lost `.dead` is a session online forever).
LISTEN_QUEUE = 1_000_000
# The longest a print may take (a router answering 2,000 rows takes well under a second),
# and never more than a quarter of the lease TTL: the loop does not renew its lease
# while it waits (tasks/leases.py renews only loops that make progress).
PRINT_TIMEOUT = 5.0
# The router's customers are re-read this often, and at most this often after an
# unknown login shows up (a customer added meanwhile).
REFRESH_SECONDS = 60.0
UNKNOWN_REFRESH_GAP = 10.0

_MENUS: dict[SessionKind, tuple[str, tuple[str, ...]]] = {
    "pppoe": ("/ppp/active", PPP_PROPLIST),
    "hotspot": ("/ip/hotspot/active", HOTSPOT_PROPLIST),
}


# Routed to `monitors` by celeryconfig.task_routes; early ack and no result, as monitors.
@app.task(name=WATCH_TASK, bind=True, acks_late=False, ignore_result=True)  # type: ignore[untyped-decorator]  # celery is untyped
def watch(
    self: Any,
    router_id: str,
    token: str,
    fence: int | None = None,
    enqueued_ms: int | None = None,
    **shown: str,
) -> str:
    """Watch one router until stopped; the return value is the stop reason (for logs).

    `shown` (router, router_name) is only there for Flower to display and search."""
    task_id = getattr(self.request, "id", None) or task_id_of(str(token))
    reason = RouterWatch(str(router_id), str(token), task_id, enqueued_ms).run()
    if reason == REVOKED:
        self.send_event("task-revoked", terminated=False, signum=None, expired=False)
        raise Ignore()
    return reason


class RouterWatch:
    def __init__(self, router_id: str, token: str, task_id: str, enqueued_ms: int | None = None) -> None:
        self.router_id = router_id
        self.token = token
        self.task_id = task_id
        self.enqueued_ms = enqueued_ms
        self.settings = get_settings()
        self.rt = runtime.current()
        self.sem = semaphore(self.rt.redis)
        self.publisher = WatchPublisher(self.rt.redis, router_id, self.settings)
        self.claimant = lifecycle.new_claimant()
        self.fence = 0
        self.lease: LeaseHandle | None = None
        self.stop_event = _StopEvent()
        self.db: WatchDatabase | None = None
        self.tables: dict[SessionKind, SessionTable] = {k: SessionTable(k) for k in _MENUS}
        self.streams: dict[SessionKind, Stream] = {}
        self.hotspot = True  # the router has hotspot, until a trap says otherwise
        self.resync: set[SessionKind] = set()  # menus to print again (their listen was re-issued)
        self.opened = False
        self.counters_if = CounterRates()
        self.counters_q = CounterRates()
        self.print_timeout = min(PRINT_TIMEOUT, max(0.5, self.settings.monitor_lease_ttl / 4))
        self.retry_at = 0.0
        self.backoff = Backoff()
        self.denied_backoff = Backoff(DENIED_BACKOFF_INITIAL, DENIED_BACKOFF_MAX)
        self.trouble: str | None = None
        self.redis_full = False
        self.last_reload = time.monotonic()  # run() reads the customers first
        self.unknown_at_reload: set[tuple[str, str]] = set()
        # Alerts (tasks/alert_eval.py): evaluated on the loop, written by the process's
        # alert writer thread (tasks/alert_hooks.py), never here.
        self.alerting: alert_hooks.Alerting | None = None
        self.evaluator = RouterEvaluator(router_id, self.settings.alert_resolve_s)
        self.rules_version = -1
        self.timers_key = keys.alert_timers(f"router:{router_id}")
        self.timers_saved_at = 0.0

    @property
    def directory(self) -> Directory:
        assert self.db is not None and self.db.directory is not None, "loaded before the loop"
        return self.db.directory

    # -- 1 and 2: wanted? claim -------------------------------------------------------------

    def run(self) -> str:
        if lifecycle.message_expired(self.enqueued_ms, self.sem.now_ms(), self.settings):
            log.info("router watch %s: message expired in the queue; the reconciler has moved on", self.token)
            return NOT_WANTED
        if not self.settings.router_watch:
            self._release()
            return DISABLED
        self.db = WatchDatabase(self.router_id)
        try:
            self.db.load()
        except Exception as exc:
            # The database is away: the reservation expires and the reconciler retries.
            log.warning("router watch %s: cannot read the router's customers: %s", self.token, exc)
            return NOT_WANTED
        self._start_alerts()  # PostgreSQL too: before the lease, like the customers
        if not self._claim():
            return NOT_WANTED
        reason = "error"
        handle: RouterHandle | None = None
        try:
            handle = get_hub().checkout(RouterEndpoint(**self.directory.config.endpoint_kwargs()))
            self.db.start()
            reason = self._loop(handle)
        except Exception as exc:
            log.exception("router watch %s failed", self.token)
            reason = f"error: {type(exc).__name__}"
        finally:
            self._close_streams()
            if handle is not None:
                _quietly(handle.close)
            _quietly(self.db.close)
            self._finish(reason)
        return reason

    def _claim(self) -> bool:
        try:
            self.fence = self.sem.claim(
                self.token,
                self.router_id,
                self.router_id,
                self.claimant,
                global_limit=NO_CAP,
                router_limit=1,
                ttl=self.settings.monitor_lease_ttl,
            )
        except (SemaphoreError, redis.RedisError) as exc:
            log.warning("router watch %s: not claimed, this delivery ends: %s", self.token, exc)
            return False
        self.lease = self.rt.keeper().register(
            self.token,
            self.router_id,
            self.router_id,
            session_id=self.token,
            claimant=self.claimant,
            task_id=self.task_id,
            stop_event=self.stop_event,
            space=WATCHES,
            stop_key=watch_stop(self.router_id),
        )
        log.info("router watch %s started on %s (fence %d)", self.token, self.router_id, self.fence)
        return True

    def _release(self) -> bool:
        try:
            return self.sem.release(self.token, self.router_id, self.router_id, claimant=self.claimant)
        except redis.RedisError as exc:
            log.warning("router watch %s: release failed (the lease TTL frees it): %s", self.token, exc)
            return False

    def _finish(self, reason: str) -> None:
        if self.lease is not None:
            self.rt.keeper().unregister(self.lease)
        if reason == LEASE_LOST:
            log.warning("router watch %s: lease lost, stopped writing", self.token)
        else:
            self._release()
        log.info("router watch %s ended: %s", self.token, reason)

    def _lease(self) -> LeaseHandle:
        assert self.lease is not None, "the loop runs only with a claimed lease"
        return self.lease

    # -- 3: the loop --------------------------------------------------------------------------

    def _loop(self, handle: RouterHandle) -> str:
        lease = self._lease()
        interval = self.settings.router_watch_interval
        next_cycle = time.monotonic()
        while True:
            lease.progress()
            if lease.stop_event.is_set():
                return lease.stop_reason or lifecycle.STOP_REQUESTED
            if shutting_down.is_set():
                return WORKER_SHUTDOWN
            now = time.monotonic()
            if now < self.retry_at:
                self.stop_event.wait(min(1.0, self.retry_at - now))
            elif not self.opened:
                self._open(handle)
            elif now >= next_cycle:
                next_cycle = max(next_cycle + interval, now)
                self._cycle(handle)
            else:
                self._listen(min(LISTEN_WAIT, next_cycle - now))

    # -- sessions -------------------------------------------------------------------------------

    def _open(self, handle: RouterHandle) -> None:
        """Log in (shared connection), then listen-and-print each sessions menu."""
        self._close_streams()
        self.resync.clear()
        try:
            if handle.client(wait=OPEN_WAIT) is None:
                return  # still logging in
        except RouterError as exc:
            # The hub's login failed and is remembered for every user of the router: retry
            # when the hub retries (tasks/hub.py), as the monitors do.
            handle.invalidate()
            retry = handle.retry_in()
            self._offline(router_trouble(exc), delay=retry if retry > 0 else None)
            return
        try:
            for kind in _MENUS:
                if kind == "hotspot" and not self.hotspot:
                    continue
                if not self._open_menu(handle, kind):
                    return
        except RouterError as exc:
            self._failed(handle, exc)
            return
        self.opened = True

    def _open_menu(self, handle: RouterHandle, kind: SessionKind) -> bool:
        menu, proplist = _MENUS[kind]
        # Listen first: a change between the print and the listen would be lost.
        stream = handle.stream(f"{menu}/listen", maxsize=LISTEN_QUEUE, wait=OPEN_WAIT)
        if stream is None:
            return False
        try:
            rows = handle.call(f"{menu}/print", proplist=proplist, timeout=self.print_timeout)
        except LoginError:
            _quietly(stream.cancel)
            raise
        except TrapError as exc:
            _quietly(stream.cancel)
            if kind == "hotspot":
                # No hotspot package or service here (docs/routeros.md): stop asking.
                log.info("router watch %s: %s/print refused (%s): no hotspot here", self.token, menu, exc)
                self.hotspot = False
                return True
            raise
        if rows is None:
            _quietly(stream.cancel)
            return False
        self.streams[kind] = stream
        if kind == "pppoe":
            self.stop_event.wake = stream.wake
        self._load(kind, rows)
        return True

    def _load(self, kind: SessionKind, rows: list[dict[str, str]]) -> None:
        """A print of a sessions menu: the first one is the table (every known customer
        online is written as seen); a later one (after the listen was re-issued) also
        says what came and went meanwhile."""
        table = self.tables[kind]
        first = not table.loaded
        up, down = table.load(rows, time.monotonic())
        if first:
            for session in table.sessions():
                self._seen(session, online=True)
        self._session_events([("up", s) for s in up] + [("down", s) for s in down])

    def _listen(self, timeout: float) -> None:
        """Apply listen rows (waiting up to `timeout` for the first) and publish what they say."""
        changes: list[tuple[Literal["up", "down"], Session]] = []
        ppp = self.streams.get("pppoe")
        if ppp is None:
            self.stop_event.wait(timeout)
        else:
            self._drain("pppoe", ppp, timeout, changes)
        hotspot = self.streams.get("hotspot")
        if hotspot is not None:
            self._drain("hotspot", hotspot, 0.0, changes)
        if changes:
            self._session_events(changes)

    def _drain(
        self,
        kind: SessionKind,
        stream: Stream,
        timeout: float,
        changes: list[tuple[Literal["up", "down"], Session]],
    ) -> None:
        event = stream.get(timeout=timeout)
        while event is not None:
            if event.kind == "data":
                change = self.tables[kind].apply(event.data or {}, time.monotonic())
                if change is not None:
                    changes.append(change)
            elif event.kind == "resumed":
                # The client re-issued the listen on a new connection: what changed while
                # it was away is only in a fresh print (next cycle).
                self.resync.add(kind)
            elif event.kind in ("trap", "done", "failed"):
                reason = event.message or event.kind
                log.warning("router watch %s: %s listen ended (%s)", self.token, kind, reason)
                self.streams.pop(kind, None)
                self.opened = False  # listen and print again
                return
            event = stream.get(timeout=0)

    def _session_events(self, changes: list[tuple[Literal["up", "down"], Session]]) -> None:
        """Publish a known customer's session_up / session_down (one script call for the
        batch), wake its monitor on `up`, and note it for customers.last_online."""
        if not changes:
            return
        directory = self.directory
        entries: list[Entry] = []
        wake: list[str] = []
        for change, session in changes:
            # A reconnect makes a new interface or queue whose counters start from 0.
            self._forget_counters(session)
            meta = directory.login(session.kind, session.name)
            if meta is None:
                continue  # listed with the unknown sessions in the next view
            self._seen(session, online=change == "up")
            entry = session_entry(
                SESSION_UP if change == "up" else SESSION_DOWN,
                directory.router,
                meta,
                session=session.kind,
                name=session.name,
                address=session.address,
                caller_id=session.caller_id,
                uptime_s=session.uptime_s,
                fence=self.fence,
            )
            entries.append((entry, entry))
            if change == "up":
                wake.append(meta.customer_id)
            elif self.alerting is not None:
                self._alert(self.evaluator.session_down(meta.customer_id, meta, time.time()))
        if entries:
            self._publish(entries, wake=wake)

    def _forget_counters(self, session: Session) -> None:
        if session.kind == "pppoe":
            self.counters_if.forget(f"<pppoe-{session.name}>")
        else:
            self.counters_q.forget(f"queue:<hotspot-{session.name}>")

    def _seen(self, session: Session, online: bool) -> None:
        meta = self.directory.login(session.kind, session.name)
        if meta is not None and self.db is not None:
            self.db.seen(meta.customer_id, session.address if online else None)

    def _close_streams(self) -> None:
        self.stop_event.wake = None
        streams, self.streams = list(self.streams.values()), {}
        for stream in streams:
            _quietly(stream.cancel)

    # -- the cycle ------------------------------------------------------------------------------

    def _cycle(self, handle: RouterHandle) -> None:
        try:
            client = handle.client(wait=0)
        except RouterError as exc:  # the connection was replaced and its login failed
            self.opened = False
            self._offline(router_trouble(exc), delay=handle.retry_in() or None)
            return
        if client is None or not client.connected:
            # The shared client is re-dialling (it re-issues the listens when back): a
            # print now would only wait for it. Say why, look again shortly.
            self._offline(f"router unreachable: {handle.last_error() or 'reconnecting'}", delay=1.0)
            return
        started = time.monotonic()
        try:
            interfaces = handle.call(
                "/interface/print",
                queries=INTERFACE_QUERY,
                proplist=INTERFACE_PROPLIST,
                timeout=self.print_timeout,
            )
            read_interfaces = time.monotonic()
            queues = handle.call("/queue/simple/print", proplist=QUEUE_PROPLIST, timeout=self.print_timeout)
            read_queues = time.monotonic()
            for kind in sorted(self.resync):
                menu, proplist = _MENUS[kind]
                rows = handle.call(f"{menu}/print", proplist=proplist, timeout=self.print_timeout)
                if rows is not None:
                    self.resync.discard(kind)
                    self._load(kind, rows)
        except RouterError as exc:
            self._failed(handle, exc)
            return
        if interfaces is None or queues is None:
            self._offline("router connection not ready")
            return
        self._publish_cycle(interfaces, read_interfaces, queues, read_queues, started)

    def _publish_cycle(
        self,
        interfaces: list[dict[str, str]],
        read_interfaces: float,
        queues: list[dict[str, str]],
        read_queues: float,
        started: float,
    ) -> None:
        directory = self.directory
        rates = Rates()
        interface_rates(interfaces, directory, self.counters_if, read_interfaces, rates)
        queue_rates(queues, directory, self.counters_q, read_queues, rates)
        if rates.skipped:
            log.warning("router watch %s: %d rows without counters skipped", self.token, rates.skipped)
        now = time.monotonic()
        sessions_now = [s for table in self.tables.values() for s in table.by_id.values()]
        view = build_view(directory, sessions_now, rates, now)
        top = view.top(self.settings.router_top_n)
        monitored = self._monitored(row["customer_id"] for row in top)
        interval = self.settings.router_watch_interval
        cycle_ms = int((read_queues - started) * 1000)
        summary, whole = top_entries(
            directory.router,
            online=view.online,
            unknown=len(view.unknown),
            customers=view.customers,
            download_bps=view.download_bps,
            upload_bps=view.upload_bps,
            interval=interval,
            cycle_ms=cycle_ms,
            rows=[top_json(row, row["customer_id"] in monitored) for row in top],
            fence=self.fence,
        )
        state = {**_router_fields(directory.router), **view.state(interval=interval, cycle_ms=cycle_ms)}
        if self._publish([(summary, whole)], view=json.dumps(state, separators=(",", ":"))):
            self.backoff.reset()
            self.denied_backoff.reset()
            if self.trouble is not None:
                log.info("router watch %s: router answers again", self.token)
                self.trouble = None
        self._alerts_cycle(rates, view.download_bps)
        if self.db is not None:
            self.db.flush()
            self._maybe_refresh({(s["kind"], s["name"]) for s in view.unknown})

    # -- alerts -----------------------------------------------------------------------------------

    def _start_alerts(self) -> None:
        """Before the loop: the rules, this router's open alerts and the timers a previous
        watch saved, so a restarted watch neither fires again nor forgets."""
        alerting = alert_hooks.alerting()
        if alerting is None:
            return
        try:
            rules = alerting.refresh()
        except Exception as exc:
            log.warning("router watch %s: alert rules not read (the writer retries): %s", self.token, exc)
            rules = alerting.rules
        self.alerting = alerting
        self.rules_version = rules.version
        self.evaluator.set_rules(rules.rules, time.time())
        mine = {r.id for r in self.evaluator.rules}
        by_id = self.directory.by_id
        opened = [
            (rule_id, subject)
            for rule_id, subject in rules.open
            if rule_id in mine
            and (subject == f"router:{self.router_id}" or subject.partition(":")[2] in by_id)
        ]
        self.evaluator.restore(opened, alerting.load_timers(self.timers_key))

    def _alerts_cycle(self, rates: Rates, total_download_bps: int) -> None:
        alerting = self.alerting
        if alerting is None:
            return
        now = time.time()
        out: list[Transition] = []
        rules = alerting.rules
        if rules.version != self.rules_version:
            self.rules_version = rules.version
            out += self.evaluator.set_rules(rules.rules, now)
        out += self.evaluator.evaluate_cycle(rates.customers, self.directory.by_id, total_download_bps, now)
        alert_hooks.count_checks(self.evaluator.checks)
        self._alert(out)
        if time.monotonic() >= self.timers_saved_at + self.settings.alert_rules_refresh:
            self.timers_saved_at = time.monotonic()
            alerting.save_timers(self.timers_key, self.evaluator.snapshot(), self._owner())

    def _alert(self, transitions: list[Transition]) -> None:
        if transitions and self.alerting is not None:
            self.alerting.submit(transitions, self._owner())

    def _owner(self) -> alert_hooks.Owner:
        return (keys.watch_owner(self.router_id), self.token, self.fence)

    def _maybe_refresh(self, unknown: set[tuple[str, str]]) -> None:
        """Re-read the router's customers every REFRESH_SECONDS, and soon after a login
        unknown at the last reading shows up (it may be a customer added since)."""
        assert self.db is not None
        now = time.monotonic()
        new_unknown = bool(unknown - self.unknown_at_reload)
        if now >= self.last_reload + REFRESH_SECONDS or (
            new_unknown and now >= self.last_reload + UNKNOWN_REFRESH_GAP
        ):
            self.last_reload, self.unknown_at_reload = now, unknown
            self.db.reload()

    def _monitored(self, customer_ids: Iterable[str]) -> set[str]:
        """Which of these customers a monitor owns now (one round trip)."""
        ids = list(customer_ids)
        if not ids:
            return set()
        try:
            with self.rt.redis.pipeline(transaction=False) as pipe:
                for customer_id in ids:
                    pipe.exists(customer_owner(customer_id))
                found = pipe.execute()
        except redis.RedisError:
            return set()
        return {customer_id for customer_id, n in zip(ids, found) if n}

    def _failed(self, handle: RouterHandle, exc: RouterError) -> None:
        """A command failed. The router said no (`not enough permissions`): say so and
        retry rarely. The shared client gave up (its re-login was refused): drop it, the
        next use logs in anew. Anything else (the link dropped, a reply timed out) the
        client heals by itself, re-issuing the listens: retry after a backoff."""
        if isinstance(exc, LoginError):
            handle.invalidate()
            self.opened = False
            self._offline(router_trouble(exc))
        elif isinstance(exc, TrapError):
            self.opened = False  # listen and print again once allowed
            self._offline(f"router refused a command: {exc}", delay=self.denied_backoff.next_delay())
        else:
            self._offline(router_trouble(exc))

    def _offline(self, reason: str, delay: float | None = None) -> None:
        """Router trouble: say so in the view (once per change), retry later."""
        self.retry_at = time.monotonic() + (self.backoff.next_delay() if delay is None else delay)
        if reason == self.trouble:
            return
        self.trouble = reason
        log.info("router watch %s: offline (%s)", self.token, reason)
        directory = self.directory
        state = {**_router_fields(directory.router), "status": "offline", "reason": reason}
        self._publish([], view=json.dumps(state, separators=(",", ":")))

    # -- publishing -----------------------------------------------------------------------------

    def _publish(self, entries: list[Entry], *, view: str = "", wake: Iterable[str] = ()) -> bool:
        try:
            ids = self.publisher.publish(
                entries, token=self.token, fence=self.fence, view=view, wake=list(wake)
            )
        except redis.OutOfMemoryError:
            if not self.redis_full:
                self.redis_full = True
                why = lifecycle.REDIS_OUT_OF_MEMORY
                log.warning("router watch %s: %s: frames dropped until memory is freed", self.token, why)
            return False
        except (redis.RedisError, MessageError) as exc:
            # Redis trouble is the keeper's call: it declares the lease lost after the TTL.
            log.warning("router watch %s: publish failed: %s", self.token, exc)
            return False
        if ids is None:
            self._lease().request_stop(LEASE_LOST)  # fenced out: another watch owns the router
            return False
        self.redis_full = False
        return True


def _router_fields(router: RouterMeta) -> dict[str, str]:
    return {"router": router.router, "router_name": router.router_name}


class _StopEvent(threading.Event):
    """The watch's stop event: setting it also wakes the PPP listen's blocked read."""

    def __init__(self) -> None:
        super().__init__()
        self.wake: Callable[[], None] | None = None

    def set(self) -> None:
        super().set()
        wake = self.wake
        if wake is not None:
            try:
                wake()
            except Exception:  # the loop still sees the event within LISTEN_WAIT
                log.exception("could not wake a router watch's read")


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:
        log.exception("cleanup step failed")
