"""How the client's requests reach the server: the ``Transport`` interface the sender talks
through, ``HttpTransport`` (httpx: one pooled connection, TCP_NODELAY, a verdict per request),
and ``InMemoryTransport``, which records requests and answers as told (tests, offline tools)."""

from __future__ import annotations

import enum
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

import httpx

from trainer_client.settings import resolve
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


class Transport(Protocol):
    """What the sender, ``init()`` and ``ganwatch replay`` need of a way to the server."""

    def send(self, message: Message) -> tuple[Outcome, str]:
        """Make the request; the verdict, and what the server said when it was not SENT."""
        ...

    def get_json(self, path: str, timeout: float) -> dict | None:
        """GET a JSON resource; None when it is not there or the server cannot be reached."""
        ...

    def close(self) -> None:
        ...


class HttpTransport:
    """The server over HTTP(S), with the token (``token``, else GANWATCH_TOKEN) as a bearer."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, connect_timeout: float = 2.0,
                 headers: dict | None = None, token: str | None = None) -> None:
        headers = dict(headers or {})
        token = resolve("token", token or None)
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


class InMemoryTransport:
    """A server in a list: records every request made, answers SENT unless told to fail
    (``fail``: RETRY, as an unreachable server or a 5xx) or to refuse (``refuse``: REJECTED,
    as a 4xx). Safe to use from the sender thread while a test reads it."""

    UNREACHABLE = "ConnectError: the in-memory server is down"

    def __init__(self, resources: dict[str, dict] | None = None) -> None:
        self.resources = dict(resources or {})  # what get_json answers, by path
        self.requests: list[Message] = []  # every attempt, in order
        self.delivered: list[Message] = []  # the requests answered SENT, in order
        self.closed = False
        self._script: deque[tuple[Outcome, Detail]] = deque()
        self._until_recovered: tuple[Outcome, Detail] | None = None
        self._changed = threading.Condition()

    def fail(self, times: int | None = None, detail: str = UNREACHABLE) -> None:
        """Answer RETRY to the next ``times`` requests (None: to every one until ``recover``)."""
        self._answer(Outcome.RETRY, Detail.of(detail), times)

    def refuse(self, times: int | None = 1, detail: str = "HTTP 400: refused",
               locs: tuple[tuple, ...] = ()) -> None:
        """Answer REJECTED, with a 422's error ``locs`` if given, to the next ``times`` requests
        (None: to every one until ``recover``)."""
        self._answer(Outcome.REJECTED, Detail.of(detail, tuple(locs)), times)

    def recover(self) -> None:
        """Take every request again from now on."""
        with self._changed:
            self._script.clear()
            self._until_recovered = None

    def _answer(self, outcome: Outcome, detail: Detail, times: int | None) -> None:
        with self._changed:
            if times is None:
                self._until_recovered = (outcome, detail)
            else:
                self._script.extend([(outcome, detail)] * times)

    def send(self, message: Message) -> tuple[Outcome, str]:
        with self._changed:
            self.requests.append(message)
            if self._script:
                outcome, detail = self._script.popleft()
            elif self._until_recovered is not None:
                outcome, detail = self._until_recovered
            else:
                outcome, detail = Outcome.SENT, Detail.of("")
                self.delivered.append(message)
            self._changed.notify_all()
            return outcome, detail

    def get_json(self, path: str, timeout: float) -> dict | None:
        with self._changed:
            if self._until_recovered is not None and self._until_recovered[0] is Outcome.RETRY:
                return None  # unreachable
            return self.resources.get(path)

    def wait_for(self, condition: Callable[[InMemoryTransport], bool],
                 timeout: float = 10.0) -> bool:
        """Block until ``condition(self)`` holds after a request (or already does); False when
        it still does not after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout)

    def close(self) -> None:
        self.closed = True
