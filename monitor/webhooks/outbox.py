"""The outbox: a transition users are told about becomes one delivery row per matching webhook,
in the same transaction as the alert's change, so a delivery is never lost nor invented."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.db import after_commit, on_commit
from monitor.models import Delivery, Webhook, utcnow
from monitor.webhooks.payloads import facts, render

SEVERITY_RANK = {"warning": 0, "critical": 1}
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8765"


def public_url(session: Session) -> str:
    return (session.info.get("public_url") or DEFAULT_PUBLIC_URL).rstrip("/")


def receiver(webhook: Webhook) -> str:
    return webhook.name or f"webhook-{webhook.id}"


def matches(webhook: Webhook, *, rule: str, run_id: str, severity: str) -> bool:
    if not webhook.enabled:
        return False
    if SEVERITY_RANK.get(severity, 0) < SEVERITY_RANK.get(webhook.min_severity, 0):
        return False
    if webhook.rules and rule not in webhook.rules:
        return False
    return not (webhook.run_ids and run_id not in webhook.run_ids)


HANDOFF = "ganwatch_handoff"  # session.info: the delivery worker of this process, if running
HANDED = "ganwatch_handed"    # session.info: this transaction's deliveries for it


def new_delivery(session: Session, webhook: Webhook, *, kind: str, body: str,
                 event_id: int | None = None) -> Delivery:
    """A pending delivery. When this process runs a delivery worker, the delivery is written
    already leased to it and handed to it when the transaction commits (``handoff``): its
    first attempt starts at once, without a poll or a second write to claim it. Should this
    process die first, the lease runs out and any replica's worker sends it."""
    now = utcnow()
    delivery = Delivery(uuid=uuid.uuid4().hex, webhook_id=webhook.id, event_id=event_id,
                        kind=kind, body=body, status="pending", attempts=0,
                        next_attempt_at=now, created_at=now)
    worker = session.info.get(HANDOFF)
    if worker is not None and worker.accepting and webhook.enabled:
        delivery.leased_until = worker.lease_until(now)
        after_commit(session, HANDED, delivery, (delivery, webhook.url, webhook.secret))
    session.add(delivery)
    return delivery


def install_handoff(sessions, worker) -> None:
    """Make the sessions of ``sessions`` (a sessionmaker) hand their committed deliveries to
    ``worker``; deliveries of a rolled-back transaction or savepoint are never handed."""
    sessions.kw.setdefault("info", {})[HANDOFF] = worker
    on_commit(sessions, HANDED, worker.hand_off)


class Outbox:
    """Enqueues the deliveries of one transaction's notifications (webhooks read once)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._webhooks: list[Webhook] | None = None

    def webhooks(self) -> list[Webhook]:
        if self._webhooks is None:
            self._webhooks = list(self.session.scalars(
                select(Webhook).where(Webhook.enabled.is_(True)).order_by(Webhook.id)))
        return self._webhooks

    def enqueue(self, *, event, alert, run) -> int:
        """Write a delivery for each webhook the event matches; returns how many."""
        hooks = [w for w in self.webhooks()
                 if matches(w, rule=alert.rule, run_id=run.id, severity=event.severity)]
        if not hooks:
            return 0
        f = facts(kind=event.kind, alert=alert, run=run, step=event.step,
                  base_url=public_url(self.session))
        for webhook in hooks:
            new_delivery(self.session, webhook, kind=event.kind,
                         body=render(webhook.format, f, receiver(webhook)), event_id=event.id)
        return len(hooks)
