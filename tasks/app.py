"""The Celery application; configuration comes from celeryconfig only."""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.signals import worker_shutting_down

# librouteros logs every API word at DEBUG, the login password included.
logging.getLogger("librouteros").setLevel(logging.INFO)

app = Celery("tasks", include=["tasks.monitor", "tasks.reconciler"])
app.config_from_object("celeryconfig")

# Set from the worker's MainProcess signal handler; with the threads pool that is
# the process running the monitors, so every loop sees it on its next check.
# (state.should_stop is 0 on warm shutdown, falsy: an Event is unambiguous.)
shutting_down = threading.Event()


@worker_shutting_down.connect
def _on_worker_shutting_down(**_: object) -> None:
    shutting_down.set()
