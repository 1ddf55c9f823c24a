"""Webhook delivery of alert transitions: signed, durable (an outbox in the database), retried.

``verify_signature`` is what a receiver uses to check a delivery (see ``signing``).
"""

from monitor.webhooks.signing import DELIVERY_HEADER, SIGNATURE_HEADER, sign, verify_signature

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "sign", "verify_signature"]
