"""The outbox: a transition users are told about becomes one delivery row per matching webhook,
in the same transaction as the alert's change, so a delivery is never lost nor invented."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from monitor.models import Delivery, Webhook, utcnow
from monitor.settings import Settings
from monitor.webhooks.payloads import facts, render

SEVERITY_RANK = {"warning": 0, "critical": 1}


class Worker(Protocol):
    """What the outbox needs of this process's delivery worker (webhooks/worker.py)."""

    @property
    def accepting(self) -> bool: ...

    def lease_until(self, now: datetime) -> datetime: ...

    def hand_off(self, items: list[tuple[Delivery, str, str]]) -> None: ...


@dataclass(frozen=True)
class Handoff:
    """Where this process's new deliveries go, passed to the outbox explicitly: the server's
    public URL, for the links in payloads, and the delivery worker of this process, if it runs
    one (the app keeps one on ``app.state.handoff``; code without a server passes none)."""

    public_url: str
    worker: Worker | None = None

    @classmethod
    def offline(cls) -> Handoff:
        """No worker, and links to the address a server with default settings listens on."""
        return cls(Settings.model_construct().resolved_public_url())


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


class Outbox:
    """The deliveries of one transaction (webhooks read once).

    When this process runs a delivery worker, a delivery is written already leased to it, and
    handed to it by ``committed()``, which the transaction's owner calls after its commit: the
    first attempt starts at once, without a poll or a second write to claim it. Should this
    process die first, the lease runs out and any replica's worker sends it. A delivery that a
    rolled-back savepoint took with it is no longer persistent, and is never handed over."""

    def __init__(self, session: Session, handoff: Handoff) -> None:
        self.session = session
        self.handoff = handoff
        self._webhooks: list[Webhook] | None = None
        self._handed: list[tuple[Delivery, str, str]] = []

    def add(self, webhook: Webhook, *, kind: str, body: str,
            event_id: int | None = None) -> Delivery:
        """A pending delivery to ``webhook``, in this transaction."""
        now = utcnow()
        delivery = Delivery(uuid=uuid.uuid4().hex, webhook_id=webhook.id, event_id=event_id,
                            kind=kind, body=body, status="pending", attempts=0,
                            next_attempt_at=now, created_at=now)
        worker = self.handoff.worker
        if worker is not None and worker.accepting and webhook.enabled:
            delivery.leased_until = worker.lease_until(now)
            self._handed.append((delivery, webhook.url, webhook.secret))
        self.session.add(delivery)
        return delivery

    def committed(self) -> None:
        """The transaction committed: hand the worker the deliveries that were committed."""
        items = [item for item in self._handed if inspect(item[0]).persistent]
        self._handed = []
        if items and self.handoff.worker is not None:
            self.handoff.worker.hand_off(items)

    @property
    def public_url(self) -> str:
        return self.handoff.public_url.rstrip("/")

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
                  base_url=self.public_url)
        for webhook in hooks:
            self.add(webhook, kind=event.kind, body=render(webhook.format, f, receiver(webhook)),
                     event_id=event.id)
        return len(hooks)
