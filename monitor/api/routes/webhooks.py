from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from monitor.api.deps import HandoffDep, SessionDep, SettingsDep, require
from monitor.auth import Role
from monitor.errors import BadRequest
from monitor.models import Delivery, DeliveryAttempt, Webhook
from monitor.schemas import (
    DeliveriesPublic,
    DeliveryAttemptPublic,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhooksPublic,
    WebhookUpdate,
)
from monitor.webhooks import registry
from monitor.webhooks.signing import signing_key
from monitor.webhooks.targets import Policy

router = APIRouter(prefix="/webhooks", tags=["webhooks"], dependencies=[
    Depends(require(Role.admin, "webhooks need an admin token"))])

PUBLIC_FIELDS = [f for f in WebhookPublic.model_fields]


def webhook_public(webhook: Webhook) -> WebhookPublic:
    return WebhookPublic.model_validate({f: getattr(webhook, f) for f in PUBLIC_FIELDS})


def delivery_public(delivery: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryPublic:
    fields = {f: getattr(delivery, f) for f in DeliveryPublic.model_fields if f != "log"}
    if delivery.status != "pending":
        fields["next_attempt_at"] = None
    return DeliveryPublic.model_validate(fields | {"log": [
        DeliveryAttemptPublic(at=a.at, status_code=a.status_code, error=a.error,
                              duration_ms=a.duration_ms) for a in attempts]})


def _check_host(settings, url: str | None) -> None:
    """What the URL's text tells about where it points (monitor/webhooks/targets.py): refused
    with a 422 naming why. The addresses its host resolves to are checked on every connect."""
    if url is None:
        return
    refusal = Policy.from_settings(settings).url_refusal(url)
    if refusal:
        shown = url if len(url) <= 200 else url[:200] + "..."
        raise BadRequest(f"webhooks may not point at {shown!r}: {refusal}")


def _check_secret(secret: str | None) -> None:
    if secret is not None:
        try:
            signing_key(secret)
        except ValueError as exc:
            raise BadRequest(f"secret: {exc}") from None


@router.post("", response_model=WebhookCreated, status_code=201)
def create_webhook(session: SessionDep, settings: SettingsDep,
                   body: WebhookCreate) -> WebhookCreated:
    """Subscribe a URL to alert transitions. The secret (generated when not given) is returned
    this once, never again."""
    _check_host(settings, body.url)
    _check_secret(body.secret)
    webhook = registry.create_webhook(session, body)
    return WebhookCreated(**webhook_public(webhook).model_dump(), secret=webhook.secret)


@router.get("", response_model=WebhooksPublic)
def list_webhooks(session: SessionDep) -> WebhooksPublic:
    hooks = registry.list_webhooks(session)
    return WebhooksPublic(data=[webhook_public(w) for w in hooks], count=len(hooks))


@router.get("/{webhook_id}", response_model=WebhookPublic)
def read_webhook(session: SessionDep, webhook_id: int) -> WebhookPublic:
    return webhook_public(registry.get_webhook(session, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookPublic)
def update_webhook(session: SessionDep, settings: SettingsDep, webhook_id: int,
                   body: WebhookUpdate) -> WebhookPublic:
    """Change a webhook's settings (a new secret too); fields left out stay as they are."""
    _check_host(settings, body.url)
    _check_secret(body.secret)
    return webhook_public(registry.update_webhook(session, webhook_id, body))


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(session: SessionDep, webhook_id: int) -> Response:
    registry.delete_webhook(session, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", response_model=DeliveryPublic, status_code=202)
def test_webhook(session: SessionDep, handoff: HandoffDep, webhook_id: int) -> DeliveryPublic:
    """Queue a test event for this webhook; follow it in the delivery log."""
    return delivery_public(registry.send_test(session, webhook_id, handoff), [])


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic)
def list_deliveries(
    session: SessionDep,
    webhook_id: int,
    status: Annotated[str | None, Query(description="pending, delivered, failed or expired")]
    = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DeliveriesPublic:
    """The delivery log, newest first: status, attempts with their status codes and errors,
    and the next attempt of a pending delivery."""
    rows, count = registry.list_deliveries(session, webhook_id, status=status, limit=limit,
                                           offset=offset)
    return DeliveriesPublic(data=[delivery_public(d, a) for d, a in rows], count=count)
