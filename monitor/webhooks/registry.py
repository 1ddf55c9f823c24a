"""Webhook subscriptions and their delivery log: the queries behind /api/v1/webhooks."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.errors import BadRequest, NotFound
from monitor.models import Delivery, DeliveryAttempt, Webhook, utcnow
from monitor.schemas import WebhookCreate, WebhookUpdate
from monitor.webhooks.outbox import Handoff, Outbox, receiver
from monitor.webhooks.payloads import facts, render
from monitor.webhooks.signing import new_secret

DELIVERY_STATUSES = ("pending", "delivered", "failed", "expired")


def create_webhook(session: Session, body: WebhookCreate) -> Webhook:
    webhook = Webhook(name=body.name or "", url=body.url,
                      secret=body.secret or new_secret(), format=body.format,
                      min_severity=body.min_severity, rules=body.rules or None,
                      run_ids=body.run_ids or None, enabled=body.enabled, created_at=utcnow())
    session.add(webhook)
    session.commit()
    return webhook


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"unknown webhook {webhook_id}")
    return webhook


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.scalars(select(Webhook).order_by(Webhook.id)))


def update_webhook(session: Session, webhook_id: int, body: WebhookUpdate) -> Webhook:
    webhook = get_webhook(session, webhook_id)
    for field in body.model_fields_set:
        value = getattr(body, field)
        if value is None and field in ("url", "secret", "format", "min_severity", "enabled"):
            raise BadRequest(f"{field} cannot be null")
        if field in ("rules", "run_ids"):
            value = value or None  # null or empty: no filter
        setattr(webhook, field, value if value is not None or field != "name" else "")
    session.commit()
    return webhook


def delete_webhook(session: Session, webhook_id: int) -> None:
    session.delete(get_webhook(session, webhook_id))
    session.commit()


def send_test(session: Session, webhook_id: int, handoff: Handoff) -> Delivery:
    """Queue a test delivery: a made-up alert, marked as a test, through the real worker."""
    webhook = get_webhook(session, webhook_id)
    outbox = Outbox(session, handoff)

    now = utcnow()
    alert = SimpleNamespace(
        id=0, rule="test", subject="", severity="warning", title="Test delivery",
        message="a test delivery from ganwatch: this webhook is set up", action="nothing to do",
        fingerprint="test", value=None, threshold=None, evidence={}, created_at=now,
        fired_at=now, resolved_at=None)
    run = SimpleNamespace(id="test", name="test")
    f = facts(kind="test", alert=alert, run=run, step=0, base_url=outbox.public_url)
    f["url"] = f["base_url"] + "/"
    delivery = outbox.add(webhook, kind="test", body=render(webhook.format, f, receiver(webhook)))
    session.commit()
    outbox.committed()
    return delivery


def list_deliveries(session: Session, webhook_id: int, *, status: str | None, limit: int,
                    offset: int) -> tuple[list[tuple[Delivery, list[DeliveryAttempt]]], int]:
    """A webhook's deliveries, newest first, each with its attempts (oldest first)."""
    get_webhook(session, webhook_id)
    query = select(Delivery).where(Delivery.webhook_id == webhook_id)
    if status:
        if status not in DELIVERY_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(DELIVERY_STATUSES)}, "
                             f"not {status!r}")
        query = query.where(Delivery.status == status)
    count = session.scalar(select(func.count()).select_from(query.subquery()))
    deliveries = list(session.scalars(query.order_by(Delivery.id.desc())
                                      .limit(limit).offset(offset)))
    attempts: dict[int, list[DeliveryAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in session.scalars(select(DeliveryAttempt)
                                       .where(DeliveryAttempt.delivery_id.in_(list(attempts)))
                                       .order_by(DeliveryAttempt.id)):
            attempts[attempt.delivery_id].append(attempt)
    return [(d, attempts[d.id]) for d in deliveries], count
