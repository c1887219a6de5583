"""stop(): a customer's monitor, with PostgreSQL or without it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from models import ActualState, DesiredState
from models.resolution import InvalidCustomerId
from tasks import lifecycle, runtime, session_reports, sessions
from tasks.app import app
from tasks.lifecycle import Token
from tasks.service.errors import DATABASE_ERRORS, DatabaseUnavailable, NotMonitored
from tasks.service.info import SessionInfo, session_info

log = logging.getLogger(__name__)


def stop(customer_id: object, requested_by: str | None = None) -> SessionInfo:
    """Stop a customer's monitor: stop key, revoke (never terminate), desired=stopped.

    The stop key comes first: it alone stops a running monitor (its keeper polls it
    and the run ends itself, publishing `stopped`), and until the row says stopped it
    keeps the reconciler from restarting the session. So a stop works while PostgreSQL
    is away: the monitor is found through its lease in Redis, stops within a second,
    and its row is closed when PostgreSQL answers again (by the monitor's state writer
    or the reconciler). If Redis refuses the stop key, nothing was changed anywhere.
    A session that has not started yet is finished here: its reservation released,
    its row closed, `stopped` published.
    """
    target_id = _customer_uuid(customer_id)
    reason = f"stopped by {requested_by}" if requested_by else "stop requested"
    rt = runtime.current()
    try:
        row = sessions.open_for_customer(target_id)
    except DATABASE_ERRORS as exc:
        return _stop_without_database(target_id, reason, requested_by, exc)
    if row is None:
        raise NotMonitored(target_id)
    lifecycle.request_stop(rt.redis, row.id, reason)
    if row.task_id:
        # Without terminate: the threads pool cannot kill, and the flag alone makes
        # a queued message be discarded and a running loop notice.
        app.control.revoke(row.task_id)
    try:
        sessions.request_stop(row.id, reason)
        if row.actual_state in (ActualState.PENDING, ActualState.STARTING):
            rt.semaphore.release(str(Token.of(row)), row.customer_id, row.router_id)
            # An earlier attempt may have run (a handover): its report is in the stream.
            if session_reports.close_from_stream(rt.redis, row, reason, attempt=row.attempt):
                lifecycle.publish_stopped(rt.publisher, row, reason)
        return session_info(sessions.get(row.id) or row, created=False)
    except DATABASE_ERRORS as exc:
        log.warning("stop of session %s: row not written (%s); the stop key carries it", row.id, exc)
        return replace(
            session_info(row, created=False),
            desired_state=str(DesiredState.STOPPED),
            actual_state=str(ActualState.STOPPING),
        )


def _stop_without_database(
    customer_id: str, reason: str, requested_by: str | None, exc: Exception
) -> SessionInfo:
    """PostgreSQL is away: stop the customer's live lease holder through Redis alone."""
    rt = runtime.current()
    owner = rt.semaphore.owner_of(customer_id)
    if owner is None:
        raise DatabaseUnavailable(
            f"cannot stop the monitor of customer {customer_id}: the database is unavailable "
            f"({type(exc).__name__}) and Redis holds no lease for it"
        ) from exc
    token = Token.parse(owner.token)
    lifecycle.request_stop(rt.redis, token.session_id, reason)
    app.control.revoke(token.task_id)
    log.warning(
        "stop of session %s while the database is unavailable: stop key set, row written later",
        token.session_id,
    )
    return SessionInfo(
        session_id=token.session_id,
        customer_id=customer_id,
        router_id=owner.router_id or "",
        task_id=token.task_id,
        attempt=token.attempt,
        desired_state=str(DesiredState.STOPPED),
        actual_state=str(ActualState.STOPPING),
        created=False,
        requested_by=requested_by,
        created_at=None,
        started_at=None,
    )


def _customer_uuid(customer_id: object) -> str:
    try:
        return str(uuid.UUID(str(customer_id).strip()))
    except ValueError:
        raise InvalidCustomerId(customer_id) from None
