"""Celery settings only: broker and backend from settings, queues, routes, beat."""
