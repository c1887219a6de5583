"""Configuration guard: the Celery settings the monitoring engine's correctness rests on."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from harness.process import ROOT
from tests.tasks.engine import Engine


def _probe(code: str, env: dict[str, str]) -> Any:
    """What a fresh process with `env` prints as JSON after importing tasks (as web,
    workers, beat and Flower each import it)."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def test_celeryconfig_monitor_task_acks_early_and_ignores_result() -> None:
    from tasks import app

    app.loader.import_default_modules()  # what a worker does: load `include`
    monitor = app.tasks["tasks.monitor.monitor"]
    # acks_late on Redis re-delivers any task older than visibility_timeout: duplicates.
    assert monitor.acks_late is False
    assert monitor.ignore_result is True
    assert app.conf.task_acks_late is False
    assert app.conf.task_reject_on_worker_lost is False


def test_celeryconfig_routes_monitor_and_reconciler_to_their_queues() -> None:
    from tasks import app

    assert {q.name for q in app.conf.task_queues} == {"monitors", "default", "alerts"}
    assert app.amqp.router.route({}, "tasks.monitor.monitor")["queue"].name == "monitors"
    assert app.amqp.router.route({}, "tasks.reconciler.reconcile")["queue"].name == "default"
    schedule = app.conf.beat_schedule["reconcile-monitors"]
    assert schedule["task"] == "tasks.reconciler.reconcile"
    assert schedule["options"]["queue"] == "default"


def test_celeryconfig_alert_delivery_on_its_own_queue_acks_late() -> None:
    from tasks import app

    app.loader.import_default_modules()
    deliver = app.tasks["tasks.alert_delivery.deliver"]
    # A killed worker must leave the message in the broker: the row dedupes a second run.
    assert deliver.acks_late is True
    assert app.amqp.router.route({}, "tasks.alert_delivery.deliver")["queue"].name == "alerts"
    assert app.amqp.router.route({}, "tasks.alert_delivery.sweep")["queue"].name == "alerts"
    assert app.conf.beat_schedule["sweep-alert-deliveries"]["options"]["queue"] == "alerts"


def test_celeryconfig_no_prefetch_and_events_for_flower() -> None:
    from tasks import app

    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.worker_disable_prefetch is True
    assert app.conf.task_send_sent_event is False  # beat's reconcile messages would bury the monitors
    assert app.conf.worker_pool == "tasks.pool:ThreadPool"
    assert app.conf.worker_send_task_events is True


def test_celeryconfig_transport_options_identical_everywhere() -> None:
    from settings import get_settings
    from tasks import app

    expected = {"visibility_timeout": get_settings().celery_visibility_timeout}
    assert app.conf.broker_transport_options == expected
    assert app.conf.result_backend_transport_options == expected
    assert app.conf.visibility_timeout == expected["visibility_timeout"]


_PROBE = (
    "import json, tasks; c = tasks.app.conf; print(json.dumps([c.broker_transport_options, "
    "c.result_backend_transport_options, c.visibility_timeout, c.beat_schedule["
    "'reconcile-monitors']['schedule']]))"
)


def test_celeryconfig_every_process_derives_options_from_settings(tmp_path) -> None:
    # Web, worker, beat and Flower all import `tasks`; a fresh process with the
    # same environment gets the same options, whatever the defaults are.
    env = {
        "PATH": "/usr/bin:/bin",
        "CELERY_VISIBILITY_TIMEOUT": "7200",
        "RECONCILE_INTERVAL": "3",
        "ENV_FILE": str(tmp_path / "none.env"),
    }
    broker, backend, visibility, interval = _probe(_PROBE, env)
    assert broker == backend == {"visibility_timeout": 7200}
    assert visibility == 7200 and interval == 3.0


@pytest.fixture(scope="module")
def engine(engine_factory) -> Iterator[Engine]:
    eng = engine_factory(pppoe=1, hotspot=0, static=0)
    eng.start_worker("monitors", concurrency=2, name="conf")
    yield eng


def test_celeryconfig_running_worker_uses_the_same_transport_options(engine: Engine) -> None:
    from tasks import app

    name = f"conf@{socket.gethostname()}"
    replies = app.control.inspect(timeout=5, destination=[name], limit=1).conf() or {}
    conf = replies[name]
    assert conf["broker_transport_options"] == app.conf.broker_transport_options
    assert conf["result_backend_transport_options"] == app.conf.result_backend_transport_options
    assert conf["worker_disable_prefetch"] is True and conf["task_acks_late"] is False


def test_celeryconfig_worker_refuses_settings_that_contradict_each_other(tmp_path) -> None:
    # A TTL of 4 s with the default 5 s renewal used to start, accept monitors and crash
    # every attempt in the worker; now the process says why at once and exits.
    env = {
        "PATH": "/usr/bin:/bin",
        "MONITOR_LEASE_TTL": "4",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "ENV_FILE": str(tmp_path / "none.env"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "monitors", "-P", "threads"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "MONITOR_RENEW_INTERVAL" in done.stderr and "MONITOR_LEASE_TTL" in done.stderr


def test_celeryconfig_sentinel_broker_and_backend_name_the_master(tmp_path) -> None:
    # With REDIS_SENTINELS every process gets kombu's sentinel:// transport, each sentinel
    # a failover URL, the master's name (and the sentinels' password) in both option sets,
    # beside the visibility timeout.
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_SENTINELS": "s1:26379, s2:26380",
        "REDIS_SENTINEL_MASTER": "engine",
        "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
        "REDIS_PASS": "master secret",
        "REDIS_DB": "3",
        "CELERY_VISIBILITY_TIMEOUT": "7200",
        "ENV_FILE": str(tmp_path / "none.env"),
    }
    probe = (
        "import json, tasks; c = tasks.app.conf; print(json.dumps([c.broker_url, c.result_backend, "
        "c.broker_transport_options, c.result_backend_transport_options]))"
    )
    broker_url, backend_url, broker, backend = _probe(probe, env)
    assert (
        broker_url
        == backend_url
        == ("sentinel://:master%20secret@s1:26379/3;sentinel://:master%20secret@s2:26380/3")
    )
    assert (
        broker
        == backend
        == {
            "visibility_timeout": 7200,
            "master_name": "engine",
            "sentinel_kwargs": {"password": "sentinel-secret"},
        }
    )
