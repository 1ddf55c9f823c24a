from typing import Annotated

from fastapi import APIRouter, Depends, Query

from monitor.api.deps import PrincipalDep, SessionDep, require
from monitor.auth import Role
from monitor.models import Alert
from monitor.schemas import (
    INT64_MAX,
    AlertAck,
    AlertEventPublic,
    AlertEventsPublic,
    AlertPublic,
    AlertsPublic,
)
from monitor.store import alerts as alert_store

router = APIRouter(tags=["alerts"])


def alert_public(alert: Alert) -> AlertPublic:
    return AlertPublic.model_validate(
        {c: getattr(alert, c) for c in AlertPublic.model_fields if c != "url"}
        | {"url": f"/runs/{alert.run_id}#alert-{alert.id}"})


@router.get("/alerts", response_model=AlertsPublic, dependencies=[Depends(require(Role.read))])
def list_alerts(
    session: SessionDep,
    principal: PrincipalDep,
    run_id: str | None = None,
    status: Annotated[str | None, Query(description="open, pending, firing, resolved, or a "
                                                    "comma-separated list")] = None,
    rule: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlertsPublic:
    """Alerts, newest first, with their evidence and the recommended action."""
    alerts, count = alert_store.list_alerts(
        session=session, run_id=run_id, status=status, rule=rule, limit=limit, offset=offset,
        project=principal.only_project)
    return AlertsPublic(data=[alert_public(a) for a in alerts], count=count)


@router.get("/alerts/{alert_id}", response_model=AlertPublic,
            dependencies=[Depends(require(Role.read))])
def read_alert(session: SessionDep, alert_id: int) -> AlertPublic:
    return alert_public(alert_store.get_alert(session=session, alert_id=alert_id))


# a read token may: acknowledging is what the dashboard's button does
@router.post("/alerts/{alert_id}/ack", response_model=AlertPublic,
             dependencies=[Depends(require(Role.read))])
def ack_alert(session: SessionDep, alert_id: int, body: AlertAck | None = None) -> AlertPublic:
    """Acknowledge an alert: someone is on it. It keeps firing until its condition clears."""
    alert = alert_store.ack_alert(session=session, alert_id=alert_id, by=body.by if body else None)
    return alert_public(alert)


@router.get("/alert-events", response_model=AlertEventsPublic,
            dependencies=[Depends(require(Role.read))])
def list_alert_events(
    session: SessionDep,
    principal: PrincipalDep,
    run_id: str | None = None,
    after_id: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertEventsPublic:
    """Notifications, oldest first: one per firing, escalation and resolution."""
    events = alert_store.list_alert_events(session=session, run_id=run_id, after_id=after_id,
                                           limit=limit, project=principal.only_project)
    return AlertEventsPublic(
        data=[AlertEventPublic.model_validate(e, from_attributes=True) for e in events],
        count=len(events))
