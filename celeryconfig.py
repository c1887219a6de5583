"""Celery settings only: broker and backend from settings, queues, routes, beat.

Every process that talks to the broker (web, workers, beat, Flower) loads this
module, so they all carry the same transport options: on Redis the shortest
visibility timeout of any process wins (docs/architecture.md, Celery on Redis).

Deployment (see README "Workers"):
  monitors:   celery -A tasks worker -Q monitors -c N --disable-prefetch
  control:    celery -A tasks worker -Q default -c 2
  alerts:     celery -A tasks worker -Q alerts -c 8
  beat:       celery -A tasks beat
Both workers run tasks.pool.ThreadPool (worker_pool below): no -P option needed.
The reconciler runs on `default`, never on `monitors`: a monitors worker whose
threads are all busy with hour-long monitors would otherwise never pick it up,
and recovery must not depend on monitor capacity. Alert deliveries have a queue of
their own for the same reason, and so that a backlog of them (an endpoint down for
hours) never waits behind, or in front of, anything else.
"""

# Celery reads every public name of this module as a setting: helpers stay private.
from kombu import Queue as _Queue

from common.redis_clients import celery_broker as _celery_broker
from settings import get_settings as _get_settings

_settings = _get_settings()
# Plain Redis, or kombu's `sentinel://h1:p1;sentinel://h2:p2/<db>` with the master's name
# in the transport options (common/redis_clients.py); Flower reads the same options.
_broker_url, _sentinel_options = _celery_broker(_settings)

_MONITOR_TASK = "tasks.monitor.monitor"
_WATCH_TASK = "tasks.watch.watch"
_RECONCILE_TASK = "tasks.reconciler.reconcile"
_DELIVER_TASK = "tasks.alert_delivery.deliver"
_SWEEP_TASK = "tasks.alert_delivery.sweep"

broker_url = _broker_url
result_backend = _broker_url
broker_connection_retry_on_startup = True

# The three places the Celery Redis caveats name; identical in every process.
broker_transport_options = {"visibility_timeout": _settings.celery_visibility_timeout, **_sentinel_options}
result_backend_transport_options = {
    "visibility_timeout": _settings.celery_visibility_timeout,
    **_sentinel_options,
}
visibility_timeout = _settings.celery_visibility_timeout

task_queues = (_Queue("monitors"), _Queue("default"), _Queue("alerts"))
task_default_queue = "default"
task_routes = {
    _MONITOR_TASK: {"queue": "monitors"},
    # A router watch shares its process's router connections with the monitors.
    _WATCH_TASK: {"queue": "monitors"},
    _RECONCILE_TASK: {"queue": "default"},
    _DELIVER_TASK: {"queue": "alerts"},
    _SWEEP_TASK: {"queue": "alerts"},
}

# Early ack: acks_late on Redis re-delivers any task running past the visibility
# timeout (duplicates). Crash recovery is the reconciler's job, not the broker's.
# The webhook delivery task sets acks_late itself: it lasts one short POST, and its
# row in PostgreSQL makes a duplicate harmless (tasks/alert_delivery.py).
task_acks_late = False
task_reject_on_worker_lost = False
# A prefetched-but-unstarted message is unacked too and gets restored after the
# visibility timeout; fetch only when a thread is free.
worker_prefetch_multiplier = 1
worker_disable_prefetch = True

# Monitor state lives in PostgreSQL and the leases, never in the result backend.
task_ignore_result = True

# Monitors are threads of one process sharing its router connections (tasks.pool: the
# threads pool, with Flower's terminate understood instead of logged as an ERROR).
worker_pool = "tasks.pool:ThreadPool"

# Flower builds its view from worker events. No `task-sent` events: the producer-side
# flag is global, so beat's reconcile messages (one every few seconds) would bury the
# monitors in Flower's list; a monitor shows up when a worker receives it (a queued one
# is `starting` in GET /api/monitor/status). The reconciler sends no events at all.
task_send_sent_event = False
worker_send_task_events = True

task_serializer = "json"
accept_content = ["json"]
result_serializer = "json"
timezone = "UTC"
enable_utc = True

beat_schedule = {
    "reconcile-monitors": {
        "task": _RECONCILE_TASK,
        "schedule": _settings.reconcile_interval,
        # No `expires`: Celery would compare beat's clock with the worker's. A backlog of
        # reconcile messages is harmless instead: passes are gated by Redis time.
        "options": {"queue": "default"},
    },
    # Webhook deliveries whose message was lost (tasks/alert_delivery.py).
    "sweep-alert-deliveries": {
        "task": _SWEEP_TASK,
        "schedule": _settings.alert_delivery_sweep_interval,
        "options": {"queue": "alerts"},
    },
}
