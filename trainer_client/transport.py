"""HTTP to the server: one pooled connection, TCP_NODELAY, and a verdict per request."""

from __future__ import annotations

import enum
import os
import socket

import httpx

from trainer_client.spool import Message

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class Outcome(enum.Enum):
    SENT = "sent"  # stored (or already stored: a duplicate batch id)
    RETRY = "retry"  # might succeed later: network error, 5xx, 408, 429
    REJECTED = "rejected"  # the server refused it for good (4xx): sending again cannot help


class Detail(str):
    """What the server said of a request, as text; ``locs``: where a 422 found fault (each
    error's ``loc``, e.g. ``("body", "config")``), empty for any other answer."""

    locs: tuple[tuple, ...] = ()

    @classmethod
    def of(cls, text: str, locs: tuple[tuple, ...] = ()) -> Detail:
        detail = cls(text)
        detail.locs = locs
        return detail


class Transport:
    def __init__(self, base_url: str, *, timeout: float = 10.0, connect_timeout: float = 2.0,
                 headers: dict | None = None, token: str | None = None) -> None:
        headers = dict(headers or {})
        token = token or os.environ.get("GANWATCH_TOKEN")
        if token:  # a server that needs one (GANWATCH_AUTH=required): `ganwatch token create`
            headers["Authorization"] = f"Bearer {token}"
        # Without TCP_NODELAY, small requests can wait ~40 ms on delayed ACKs.
        transport = httpx.HTTPTransport(
            retries=0, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"), transport=transport, headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def send(self, message: Message) -> tuple[Outcome, str]:
        try:
            response = self.client.request(message.method, message.path, params=message.params,
                                           content=message.body, headers=message.headers)
        except httpx.HTTPError as exc:
            return Outcome.RETRY, f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return Outcome.SENT, ""
        detail, locs = _detail(response)
        if response.status_code in RETRYABLE_STATUS:
            return Outcome.RETRY, f"HTTP {response.status_code}: {detail}"
        return Outcome.REJECTED, Detail.of(f"HTTP {response.status_code}: {detail}", locs)

    def get_json(self, path: str, timeout: float) -> dict | None:
        try:
            response = self.client.get(path, timeout=timeout)
        except httpx.HTTPError:
            return None
        return response.json() if response.is_success else None

    def close(self) -> None:
        self.client.close()


def _detail(response: httpx.Response) -> tuple[str, tuple[tuple, ...]]:
    """The answer's ``detail`` as text, and the ``loc`` of each error a 422's list names."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300], ()
    if isinstance(body, dict) and "detail" in body:
        errors = body["detail"] if isinstance(body["detail"], list) else []
        locs = tuple(tuple(e["loc"]) for e in errors
                     if isinstance(e, dict) and isinstance(e.get("loc"), list))
        return str(body["detail"])[:300], locs
    return str(body)[:300], ()
