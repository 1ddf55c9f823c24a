"""Signing webhook deliveries, and checking a signature on the receiving side.

Each delivery carries ``X-Ganwatch-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256 with the webhook's secret over ``"<t>." + body`` (the raw request body, bytes),
and ``X-Ganwatch-Delivery: <id>``, the same on every retry of one delivery, for receivers to
drop duplicates. A receiver checks both the signature and the age of ``t``:

    from monitor.webhooks import verify_signature

    if not verify_signature(secret, request.headers["X-Ganwatch-Signature"], raw_body):
        return 401

This module needs only the standard library: a receiver can copy it as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Ganwatch-Signature"
DELIVERY_HEADER = "X-Ganwatch-Delivery"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Ganwatch-Signature`` value for ``body`` sent at ``timestamp`` (default now)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(secret: str, header: str | None, body: bytes, tolerance: float = 300,
                     now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` with ``secret``, made no more than
    ``tolerance`` seconds from now (either way). Several ``v1=`` values (a secret being rotated)
    are accepted if any matches. The comparison takes constant time."""
    if not header or not secret:
        return False
    timestamp = None
    candidates = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
