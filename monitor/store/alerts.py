"""Alerts: runs' health, the alert list, one alert, acknowledging, the event feed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.errors import BadRequest, unknown_alert
from monitor.models import Alert, AlertEvent, Run, utcnow
from monitor.store.runs import get_run

ALERT_STATUSES = ("pending", "firing", "resolved")


def run_health(*, session: Session, run_ids: list[str]) -> dict[str, tuple[str, int, bool]]:
    """(health, firing alerts, stalled?) per run: critical > warning > ok over firing alerts."""
    out = {run_id: ("ok", 0, False) for run_id in run_ids}
    if not run_ids:
        return out
    rows = session.execute(
        select(Alert.run_id, Alert.severity, Alert.rule)
        .where(Alert.run_id.in_(run_ids), Alert.status == "firing"))
    for run_id, severity, rule in rows:
        health, n, stalled = out[run_id]
        if severity == "critical" or health == "critical":
            health = "critical"
        else:
            health = "warning"
        out[run_id] = (health, n + 1, stalled or rule == "stalled")
    return out


def list_alerts(*, session: Session, run_id: str | None, status: str | None,
                rule: str | None, limit: int, offset: int,
                project: str | None = None) -> tuple[list[Alert], int]:
    """Alerts, newest first. ``status`` is one of ALERT_STATUSES, ``open`` (pending or
    firing), or a comma-separated list of them."""
    where = []
    if project is not None:
        where.append(Alert.run_id.in_(select(Run.id).where(Run.project == project)))
    if run_id is not None:
        get_run(session=session, run_id=run_id)
        where.append(Alert.run_id == run_id)
    if status:
        wanted = set()
        for part in status.split(","):
            part = part.strip()
            if part == "open":
                wanted |= {"pending", "firing"}
            elif part in ALERT_STATUSES:
                wanted.add(part)
            else:
                raise BadRequest(f"status must be open, {', '.join(ALERT_STATUSES)} or a "
                                 f"comma-separated list of them, not {part!r}")
        where.append(Alert.status.in_(sorted(wanted)))
    if rule is not None:
        where.append(Alert.rule == rule)
    alerts = session.scalars(select(Alert).where(*where)
                             .order_by(Alert.id.desc()).limit(limit).offset(offset)).all()
    total = session.scalar(select(func.count()).select_from(Alert).where(*where)) or 0
    return list(alerts), total


def get_alert(*, session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise unknown_alert(alert_id)
    return alert


def ack_alert(*, session: Session, alert_id: int, by: str | None) -> Alert:
    """Acknowledge an alert (idempotent: the first acknowledgement's time is kept)."""
    alert = get_alert(session=session, alert_id=alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = by
        session.commit()
    return alert


def list_alert_events(*, session: Session, run_id: str | None, after_id: int,
                      limit: int, project: str | None = None) -> list[AlertEvent]:
    """Notifications (firing, escalated, resolved) in the order they happened."""
    where = [AlertEvent.id > after_id]
    if project is not None:
        where.append(AlertEvent.run_id.in_(select(Run.id).where(Run.project == project)))
    if run_id is not None:
        get_run(session=session, run_id=run_id)
        where.append(AlertEvent.run_id == run_id)
    return list(session.scalars(select(AlertEvent).where(*where)
                                .order_by(AlertEvent.id).limit(limit)).all())
