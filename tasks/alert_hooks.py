"""Where alert evaluation meets its hosts: the rules cache and the writer thread.

One `Alerting` per worker process (`alerting()`), shared by its router watches and
monitors, neither of which ever touches PostgreSQL for alerts on its loop:
- `rules`: the enabled rules (tasks/alert_eval.RuleSpec, a package scope with its
  customers) and the open alerts (rule id, subject), re-read every
  ALERT_RULES_REFRESH seconds by the writer thread and swapped whole; hosts compare
  `version` to see a change. A watch reads them once itself, before its loop, so it
  starts knowing what is open.
- the writer thread takes the hosts' transitions in order and writes each
  (tasks/alerts.apply) after checking that its host still holds its lease (token and
  fence, as the watch's publish script checks them): a watch or monitor that lost its
  lease writes nothing. PostgreSQL away: the job waits at the head and is retried,
  the hosts go on. It also saves a watch's pending timers to Redis
  (keys.alert_timers) so a watch restarted on another worker goes on counting.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select

from common.backoff import Backoff
from common.text import as_text
from models import AlertRule, Customer
from models.alert_rule import parse_scope
from models.enums import AlertKind
from settings import Settings, get_settings
from tasks import alerts, metrics, runtime, sessions
from tasks.alert_eval import RuleSpec, Transition

log = logging.getLogger(__name__)

# How long saved timers outlive their watch (a router watched again within it resumes them).
TIMERS_TTL_S = 86_400
# Jobs kept while PostgreSQL is away: the oldest go first beyond it (logged).
MAX_PENDING = 10_000

Owner = tuple[str, str, int]  # (owner key, token, fence)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[RuleSpec, ...] = ()
    open: frozenset[tuple[int, str]] = frozenset()
    version: int = 0


def read_rules(version: int) -> RuleSet:
    """The enabled rules and the open alerts, in one transaction."""
    with sessions.db() as session:
        rows = list(
            session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id))
        )
        packages = {
            int(str(parse_scope("scope", r.scope).id)) for r in rows if r.scope.startswith("package:")
        }
        members: dict[int, set[str]] = {p: set() for p in packages}
        if packages:
            for cid, pid in session.execute(
                select(Customer.id, Customer.package_id).where(Customer.package_id.in_(packages))
            ):
                members[int(str(pid))].add(str(cid))
        specs = []
        for r in rows:
            scope = parse_scope("scope", r.scope)
            specs.append(
                RuleSpec(
                    id=r.id,
                    name=r.name,
                    kind=AlertKind(r.kind),
                    scope_kind=scope.kind,
                    scope_id=scope.id,
                    params=dict(r.params),
                    members=frozenset(members.get(int(str(scope.id)), ()))
                    if scope.kind == "package"
                    else frozenset(),
                )
            )
        opened = frozenset((rule_id, subject) for rule_id, subject, _ in alerts.open_alerts(session))
    return RuleSet(tuple(specs), opened, version)


class Alerting:
    """The process's rules cache and alert writer (module docstring)."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self.rules = RuleSet()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._jobs: deque[tuple[Transition, Owner | None]] = deque()
        self._timers: dict[str, tuple[str, Owner]] = {}  # key -> (JSON, owner)
        self._refresh_at = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="alert-writer", daemon=True)
        self._thread.start()

    # -- the hosts' side (never blocks on PostgreSQL) ---------------------------------------

    def refresh(self) -> RuleSet:
        """Read the rules now, in the caller's thread (a watch before its loop)."""
        rules = read_rules(self.rules.version + 1)
        with self._lock:
            self.rules = rules
            self._refresh_at = time.monotonic() + self.settings.alert_rules_refresh
        return rules

    def submit(self, transitions: Iterable[Transition], owner: Owner | None) -> None:
        with self._cond:
            for t in transitions:
                if len(self._jobs) >= MAX_PENDING:
                    dropped, _ = self._jobs.popleft()
                    log.warning("alert writer: backlog full, dropped %s of %s", dropped.edge, dropped.subject)
                self._jobs.append((t, owner))
            self._cond.notify()

    def save_timers(self, key: str, snapshot: dict[str, Any], owner: Owner) -> None:
        with self._cond:
            self._timers[key] = (json.dumps(snapshot, separators=(",", ":")), owner)
            self._cond.notify()

    def load_timers(self, key: str) -> dict[str, Any]:
        try:
            raw = self.redis.get(key)
            data = json.loads(as_text(raw)) if raw else {}
        except (redis.RedisError, ValueError) as exc:
            log.warning("alert timers %s not read (counting starts over): %s", key, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def close(self) -> None:
        """Stop the thread (tests; a worker's lives as long as the process)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=5.0)

    def pending(self) -> int:
        with self._lock:
            return len(self._jobs)

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while True:
            with self._cond:
                wait = self._refresh_at - time.monotonic()
                if not self._jobs and not self._timers and wait > 0 and not self._closed:
                    self._cond.wait(timeout=wait)
                if self._closed:
                    return
                job = self._jobs[0] if self._jobs else None
                timers, self._timers = self._timers, {}
            try:
                for key, (text, holder) in timers.items():
                    if self._holds(holder):
                        self.redis.set(key, text, ex=TIMERS_TTL_S)
                if time.monotonic() >= self._refresh_at:
                    self.refresh()
                if job is not None:
                    transition, job_owner = job
                    if job_owner is None or self._holds(job_owner):
                        alerts.apply(transition, self.redis, self.settings)
                    else:
                        log.info(
                            "alert writer: %s of %s dropped: lease lost", transition.edge, transition.subject
                        )
                    with self._cond:
                        if self._jobs and self._jobs[0] is job:
                            self._jobs.popleft()
                backoff.reset()
            except Exception as exc:
                log.warning("alert writer: %s (retried)", exc)
                with self._cond:
                    self._refresh_at = max(self._refresh_at, time.monotonic() + 1.0)
                time.sleep(backoff.next_delay())

    def _holds(self, owner: Owner) -> bool:
        key, token, fence = owner
        found = self.redis.hmget(key, ["token", "fence"])
        return as_text(found[0] or b"") == token and as_text(found[1] or b"") == str(fence)


_lock = threading.Lock()
_alerting: Alerting | None = None


def alerting() -> Alerting | None:
    """The process's Alerting, started on first use; None when ALERTS is off."""
    global _alerting
    settings = get_settings()
    if not settings.alerts:
        return None
    with _lock:
        if _alerting is None:
            _alerting = Alerting(runtime.current().redis, settings)
        return _alerting


def count_checks(checks: dict[str, int]) -> None:
    """Add an evaluator's checks to the worker's counter, and start over."""
    for kind, n in checks.items():
        if n:
            metrics.ALERT_EVALUATIONS.labels(kind).inc(n)
    checks.clear()
