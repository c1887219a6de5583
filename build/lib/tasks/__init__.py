"""Monitoring engine: `celery -A tasks worker|beat` finds the app here."""

from tasks.app import app

celery = app

__all__ = ["app", "celery"]
