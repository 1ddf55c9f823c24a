"""Webhook delivery of alert transitions: signed, durable (an outbox in the database), retried.

``verify_headers`` (or ``verify_signature``) is what a receiver uses to check a delivery (see
``signing``); ``targets`` says where webhooks may and may not be sent.
"""

from monitor.webhooks.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    sign,
    signature_headers,
    verify_headers,
    verify_signature,
)

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "sign", "signature_headers", "verify_headers",
           "verify_signature"]
