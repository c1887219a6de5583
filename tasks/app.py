"""The Celery application; configuration comes from celeryconfig only."""

from __future__ import annotations

from celery import Celery

from routeros.connection import quiet_librouteros_logger

# librouteros logs every API word at DEBUG, the login password included.
quiet_librouteros_logger()

# tasks.worker holds the worker's signal handlers: listed here so every worker imports it.
app = Celery(
    "tasks",
    include=["tasks.monitor", "tasks.watch", "tasks.reconciler", "tasks.alert_delivery", "tasks.worker"],
)
app.config_from_object("celeryconfig")
