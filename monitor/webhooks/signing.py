"""Signing webhook deliveries, and checking a signature on the receiving side.

Deliveries are signed the Standard Webhooks way (https://www.standardwebhooks.com), so
receivers can check them with that project's libraries as well as with this module. Each
delivery carries:

- ``webhook-id: <id>``: the delivery's id, the same on every retry of it (drop duplicates);
- ``webhook-timestamp: <unix seconds>``: when this attempt was signed;
- ``webhook-signature: v1,<base64>``: HMAC-SHA256, keyed with the webhook's secret, over
  ``"<id>.<timestamp>." + body`` (the raw request body, bytes);

and, the same facts under ganwatch's names, ``X-Ganwatch-Delivery: <id>`` and
``X-Ganwatch-Signature: t=<timestamp>,v1=<hex>`` (the same HMAC, in hex). The id and the
timestamp are signed with the body: neither can be changed, nor a body replayed under another
id, without the signature failing.

The key: a secret of the standard's form, ``whsec_`` + base64 of the key bytes (what ganwatch
generates), is those bytes; any other secret (one you chose) is its UTF-8 bytes, which a
Standard Webhooks library takes as ``whsec_`` + base64 of them, or as the bytes themselves.

A receiver checks the signature and the age of the timestamp:

    from monitor.webhooks import verify_headers

    if not verify_headers(secret, request.headers, raw_body):
        return 401

This module needs only the standard library: a receiver can copy it as it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Ganwatch-Signature"
DELIVERY_HEADER = "X-Ganwatch-Delivery"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh secret in the Standard Webhooks form: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key a secret stands for (ValueError for a ``whsec_`` secret that is not
    base64, or an empty one)."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"a secret starting with {SECRET_PREFIX!r} must be followed by "
                             "base64 (A-Z, a-z, 0-9, + and /)") from None
    else:
        key = secret.encode()
    if not key:
        raise ValueError("the secret is empty")
    return key


def _mac(secret: str, delivery_id: str, timestamp: int, body: bytes) -> bytes:
    message = f"{delivery_id}.{timestamp}.".encode() + body
    return hmac.new(signing_key(secret), message, hashlib.sha256).digest()


def sign(secret: str, delivery_id: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Ganwatch-Signature`` value for delivery ``delivery_id`` of ``body``, signed at
    ``timestamp`` (default now)."""
    return signature_headers(secret, delivery_id, body, timestamp)[SIGNATURE_HEADER]


def signature_headers(secret: str, delivery_id: str, body: bytes,
                      timestamp: int | None = None) -> dict[str, str]:
    """Every header that identifies and signs one attempt of a delivery."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = _mac(secret, delivery_id, t, body)
    return {ID_HEADER: delivery_id, TIMESTAMP_HEADER: str(t),
            STANDARD_SIGNATURE_HEADER: "v1," + base64.b64encode(mac).decode(),
            DELIVERY_HEADER: delivery_id, SIGNATURE_HEADER: f"t={t},v1={mac.hex()}"}


def _fresh(timestamp: int, tolerance: float, now: float | None) -> bool:
    now = time.time() if now is None else now
    return abs(now - timestamp) <= tolerance


def _expected(secret: str, delivery_id: str, timestamp: int, body: bytes) -> bytes | None:
    try:
        return _mac(secret, delivery_id, timestamp, body)
    except ValueError:  # not a usable secret
        return None


def verify_signature(secret: str, header: str | None, body: bytes, *, delivery_id: str | None,
                     tolerance: float = 300, now: float | None = None) -> bool:
    """True when ``header`` (``X-Ganwatch-Signature``) is a valid signature of delivery
    ``delivery_id`` (``X-Ganwatch-Delivery``) with ``body``, made no more than ``tolerance``
    seconds from now (either way). Several ``v1=`` values (a secret being rotated) are
    accepted if any matches. The comparison takes constant time."""
    if not header or not secret or not delivery_id:
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
            candidates.append(value.strip())
    if timestamp is None or not candidates or not _fresh(timestamp, tolerance, now):
        return False
    expected = _expected(secret, delivery_id, timestamp, body)
    if expected is None:
        return False
    return any(hmac.compare_digest(expected.hex(), c) for c in candidates)


def verify_headers(secret: str, headers: Mapping[str, str], body: bytes, *,
                   tolerance: float = 300, now: float | None = None) -> bool:
    """True when a request's headers (any mapping; names in any case) sign ``body`` with
    ``secret``: the Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``, several space-separated ``v1,`` signatures accepted), or, without
    them, ``X-Ganwatch-Delivery`` and ``X-Ganwatch-Signature``. The timestamp must be no more
    than ``tolerance`` seconds from now."""
    lower = {str(k).lower(): v for k, v in headers.items()}
    if isinstance(body, str):
        body = body.encode()
    signature = lower.get(STANDARD_SIGNATURE_HEADER)
    if signature is None:
        return verify_signature(secret, lower.get(SIGNATURE_HEADER.lower()), body,
                                delivery_id=lower.get(DELIVERY_HEADER.lower()),
                                tolerance=tolerance, now=now)
    delivery_id, stamp = lower.get(ID_HEADER), lower.get(TIMESTAMP_HEADER)
    if not (secret and delivery_id and stamp):
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if not _fresh(timestamp, tolerance, now):
        return False
    expected = _expected(secret, delivery_id, timestamp, body)
    if expected is None:
        return False
    matched = False
    for candidate in signature.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(expected, given)
    return matched
