"""Every Redis key and stream name the engine uses, defined once.

Other modules (and the Lua scripts, which receive key names as KEYS or store them
in the lease table) never spell a key themselves, so a rename happens here only.

The deployment is a single Redis primary (optionally behind Sentinel), not Cluster: the
semaphore scripts touch the router zset and owner key of *expired* holders, which they
learn from the lease table at run time, and the fenced publish writes the owner's
customer stream and the combined stream together. docs/scaling.md (Beyond one Redis:
Cluster) gives the hash-tag layout Cluster would take; it would also move the stream
names prescribed by the seed.
"""

from __future__ import annotations

from common.text import as_text

PREFIX = "mikrotik"

# The seed's combined stream: every customer's entries, bounded by MAXLEN ~.
COMBINED_STREAM = f"{PREFIX}:traffic:customers"

# Global semaphore: zset, member = lease token, score = expiry (ms, Redis TIME).
GLOBAL_SLOTS = f"{PREFIX}:monitor:slots"

# Lease table: hash, field = token, value = JSON {customer, router, owner key, router key}.
# The scripts need it to clean up a holder's other keys when it expires.
LEASES = f"{PREFIX}:monitor:leases"

# Fence counter: INCR on every fresh acquire. One global counter (not per customer)
# so it can never go backwards for a customer whose keys were deleted; after a
# FLUSHDB it restarts, which is harmless because publishes check token AND fence.
FENCE_COUNTER = f"{PREFIX}:monitor:fence"


CUSTOMER_STREAM_PREFIX = f"{PREFIX}:traffic:customer:"


def customer_stream(customer_id: object) -> str:
    """Per-customer stream: resume/backfill cost is proportional to that customer only."""
    return f"{CUSTOMER_STREAM_PREFIX}{customer_id}"


def customer_id_from_stream(name: str | bytes) -> str | None:
    """The customer id of a per-customer stream name (as XREAD returns it), else None."""
    text = as_text(name)
    if text.startswith(CUSTOMER_STREAM_PREFIX) and len(text) > len(CUSTOMER_STREAM_PREFIX):
        return text[len(CUSTOMER_STREAM_PREFIX) :]
    return None


def router_slots(router_id: object) -> str:
    """Per-router semaphore zset (same layout as GLOBAL_SLOTS)."""
    return f"{PREFIX}:monitor:router:{router_id}:slots"


def customer_owner(customer_id: object) -> str:
    """Single-flight owner of a customer: hash {token, fence, router}, PX = lease TTL."""
    return f"{PREFIX}:monitor:customer:{customer_id}:owner"


def session_stop(session_id: object) -> str:
    """Stop request for one monitor session (value = reason); polled in bulk by the keeper."""
    return f"{PREFIX}:monitor:session:{session_id}:stop"


# Epoch ms of the reconciler's last completed pass (SET by every pass). Beat schedules
# it and a `default`-queue worker runs it, so a fresh value proves both are alive:
# the web app's /ready reads it.
RECONCILER_LAST_RUN = f"{PREFIX}:monitor:reconciler:last_run"

# Set NX with a PX of half a reconcile interval by every pass: a backlog of reconcile
# messages runs one pass, timed by the Redis clock (no Celery `expires`, which compares
# the clocks of two hosts).
RECONCILER_GATE = f"{PREFIX}:monitor:reconciler:gate"

# Pub/sub channel: every stop request also publishes its session id here, so each
# worker's keeper looks at its stop keys at once instead of at its next poll (polling
# stays the fallback for a missed message: pub/sub is fire-and-forget).
STOP_CHANNEL = f"{PREFIX}:monitor:stops"

# Pub/sub channel: the router watch publishes a customer's id here when its PPPoE or
# hotspot session comes up, so a monitor waiting for that customer's interface (in
# any worker process: each keeper listens) retries at once instead of at its backoff.
SESSION_UP_CHANNEL = f"{PREFIX}:monitor:session-up"

# -- router watches (tasks/watch.py): one per router, a lease of their own ------------------

# The watches' lease space, laid out like the monitors' (GLOBAL_SLOTS, LEASES,
# router_slots, customer_owner) but apart from it: a watch never takes a monitor slot.
WATCH_SLOTS = f"{PREFIX}:watch:slots"
WATCH_LEASES = f"{PREFIX}:watch:leases"


def watch_router_slots(router_id: object) -> str:
    """The watch lease space's per-router zset (at most one member: one watch per router)."""
    return f"{PREFIX}:watch:router:{router_id}:slots"


def watch_owner(router_id: object) -> str:
    """Single-flight owner of a router's watch: hash {token, fence, router, claimant}."""
    return f"{PREFIX}:watch:router:{router_id}:owner"


def watch_stop(router_id: object) -> str:
    """Stop request for a router's watch (value = reason); polled by the keeper."""
    return f"{PREFIX}:watch:router:{router_id}:stop"


ROUTER_STREAM_PREFIX = f"{PREFIX}:router:"


def router_stream(router_id: object) -> str:
    """Per-router stream: top frames and session events, short retention. Its entries
    share their ids with their summaries in the combined stream (one resume cursor)."""
    return f"{ROUTER_STREAM_PREFIX}{router_id}:stream"


def router_id_from_stream(name: str | bytes) -> str | None:
    """The router id of a router stream's name (as SCAN returns it), else None."""
    text = as_text(name)
    suffix = ":stream"
    if text.startswith(ROUTER_STREAM_PREFIX) and text.endswith(suffix):
        router_id = text[len(ROUTER_STREAM_PREFIX) : -len(suffix)]
        return router_id or None
    return None


def router_view(router_id: object) -> str:
    """The router's latest view (JSON, written by its watch each cycle): every customer's
    rate, the online sessions, the unknown ones. The REST routes read it."""
    return f"{ROUTER_STREAM_PREFIX}{router_id}:view"


# SCAN patterns for tools that clear the engine's data between runs (bench/stack.py):
# every stream, and every per-session key (the stop requests), and the routers' views.
TRAFFIC_STREAMS_PATTERN = f"{PREFIX}:traffic:*"
SESSION_KEYS_PATTERN = f"{PREFIX}:monitor:session:*"
ROUTER_KEYS_PATTERN = f"{PREFIX}:router:*"
ROUTER_STREAMS_PATTERN = f"{PREFIX}:router:*:stream"


# -- the monitors' pings (tasks/pinger.py) ---------------------------------------------------


def ping_slots(router_id: object) -> str:
    """A router's running pings, for PING_MAX_PER_ROUTER across every worker: zset,
    member = the monitor's lease token, score = expiry (ms, Redis TIME)."""
    return f"{PREFIX}:monitor:router:{router_id}:pings"


def session_ping(session_id: object) -> str:
    """A session started with ping=false: "off" (absent: the MONITOR_PING default). Read
    by every attempt of the session, so a restart keeps the start's choice."""
    return f"{PREFIX}:monitor:session:{session_id}:ping"


# -- alerts (tasks/alerts.py) ---------------------------------------------------------------------

# Every alert event (alert_firing, alert_resolved, alert_acknowledged), MAXLEN ~
# ALERTS_STREAM_MAXLEN: the dashboard's `/ws?types=alerts` reads it, resuming by id.
ALERTS_STREAM = f"{PREFIX}:alerts:stream"
ALERTS_STREAM_MAXLEN = 10_000


def alert_timers(scope: object) -> str:
    """An evaluator's pending "condition since" timers (hash: "<rule id>|<subject>" ->
    JSON), so a restarted watch (on any worker) or the next reconcile pass goes on
    counting where the last one stopped. `scope`: "router:<id>" for a router watch,
    "reconciler" for the watch_offline rules, "customer:<id>" for a monitor's rtt rules."""
    return f"{PREFIX}:alerts:timers:{scope}"


# -- router affinity (tasks/affinity.py) ------------------------------------------------------

# The plain monitors queue: workers keep consuming it, so a message an older version
# queued there still runs (anywhere: outside the affinity rule).
MONITOR_QUEUE = "monitors"


def router_queue(router_id: object) -> str:
    """A router's own Celery queue: its monitors and its watch wait here until a worker
    process that holds the router (tasks/affinity.py) takes them."""
    return f"{MONITOR_QUEUE}.{router_id}"


# Zset, member = a monitors worker's Celery node name, score = its heartbeat's expiry
# (ms, Redis TIME): the processes that take part in the affinity.
AFFINITY_PROCESSES = f"{PREFIX}:affinity:processes"

# Set of router ids: every router a monitor or watch lease was ever taken on (the
# semaphore's acquire script adds it). A keeper places a router it finds here at its next
# round, instead of waiting for its next read of the routers table.
AFFINITY_ROUTERS = f"{PREFIX}:affinity:routers"


def affinity_holders(router_id: object) -> str:
    """The worker processes that hold a router (consume its queue): zset, member = node
    name, score = the hold's expiry (ms, Redis TIME). At most the router's cap of them."""
    return f"{PREFIX}:affinity:router:{router_id}:holders"
