"""The delivery worker: runs in every server process, sends what the outbox holds.

A delivery is *claimed* by setting a lease (on PostgreSQL under ``FOR UPDATE SKIP LOCKED``, so
two replicas never claim the same row), sent, and its outcome recorded: 2xx delivers it;
network errors, 5xx, 408 and 429 are retried with exponential backoff and jitter (at least as
long as ``Retry-After`` asks) until the delivery is older than ``webhook_max_age``; any other
status fails it for good, and so does a target this server may not send to
(``targets``: checked on the URL's text and on every address its host resolves to, at
connect time). A process that dies mid-send leaves a lease that runs out, and the delivery is
sent again (with the same ``webhook-id``/``X-Ganwatch-Delivery``, for receivers to dedupe).
What the log keeps of an attempt is its status code and a short reason in ganwatch's words:
never the receiver's response body (a webhook pointed at an internal service must not become a
way to read it).
"""

from __future__ import annotations

import asyncio
import http
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from monitor import __version__, metrics
from monitor.db import is_postgres
from monitor.models import Delivery, DeliveryAttempt, Webhook, utcnow
from monitor.settings import Settings
from monitor.webhooks.signing import signature_headers
from monitor.webhooks.targets import GuardedTransport, Policy, TargetRefused

log = logging.getLogger("ganwatch.webhooks")

RETRYABLE_STATUS = {408, 429}
MAX_IN_FLIGHT = 64  # deliveries being sent at once, per server process
MAX_REASON = 200  # characters of an attempt's error kept in the log


@dataclass(frozen=True)
class Claimed:
    id: int
    uuid: str
    kind: str
    url: str
    secret: str
    body: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    retry_after: float | None
    duration_ms: float
    final: bool = False  # refused before sending (a target it may not reach): not retried


def status_reason(code: int) -> str:
    """``HTTP 500 Internal Server Error``: the standard phrase, not the receiver's words."""
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "non-standard status"
    return f"HTTP {code} {phrase}"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or utcnow())).total_seconds())


def backoff_seconds(attempts: int, settings: Settings, retry_after: float | None) -> float:
    """Exponential backoff with full jitter in its upper half, never less than Retry-After."""
    ceiling = min(settings.webhook_retry_max, settings.webhook_retry_base * 2 ** (attempts - 1))
    delay = ceiling * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.webhook_max_age))
    return delay


class DeliveryWorker:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.policy = Policy.from_settings(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handed: deque[Claimed] = deque()
        self._wake: asyncio.Event | None = None

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self._loop
        return loop if loop is not None and not loop.is_closed() else None

    @property
    def accepting(self) -> bool:
        """Running, so deliveries may be leased to it at creation and handed over."""
        return self._running_loop() is not None

    def lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.webhook_timeout + 30)

    # -- deliveries handed over by this process's transactions (any thread) ----------------------

    def hand_off(self, items) -> None:
        """Deliveries this process just committed, already leased to it: send them now."""
        loop = self._running_loop()
        if loop is None:
            return  # not running: the leases run out and a poll sends them
        claimed = [Claimed(d.id, d.uuid, d.kind, url, secret, d.body) for d, url, secret in items]
        try:
            loop.call_soon_threadsafe(self._take, claimed)
        except RuntimeError:  # the loop closed meanwhile (shutting down): the leases run out
            pass

    def _take(self, claimed: list[Claimed]) -> None:
        self._handed.extend(claimed)
        if self._wake is not None:
            self._wake.set()

    # -- the database side (run in a thread) --------------------------------------------------

    def due(self) -> bool:
        """Is any delivery due? A read, which takes no lock: an idle poll writes nothing."""
        now = utcnow()
        with self.sessions() as session:
            return session.scalar(
                select(Delivery.id).where(
                    Delivery.status == "pending", Delivery.next_attempt_at <= now,
                    or_(Delivery.leased_until.is_(None), Delivery.leased_until < now))
                .limit(1)) is not None

    def claim(self, limit: int = MAX_IN_FLIGHT) -> list[Claimed]:
        if not self.due():
            return []
        now = utcnow()
        lease = self.lease_until(now)
        with self.sessions() as session:
            # Too old to be worth sending (e.g. held while its webhook was disabled). This
            # write comes first on purpose: on SQLite it takes the write lock up front, where a
            # read that later writes (the leases) can fail at once under concurrent ingest.
            session.execute(update(Delivery).where(
                Delivery.status == "pending",
                Delivery.created_at < now - timedelta(seconds=self.settings.webhook_max_age))
                .values(status="expired", leased_until=None))
            query = (select(Delivery, Webhook.url, Webhook.secret)
                     .join(Webhook, Webhook.id == Delivery.webhook_id)
                     .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                            Webhook.enabled.is_(True),
                            or_(Delivery.leased_until.is_(None), Delivery.leased_until < now))
                     .order_by(Delivery.id).limit(limit))
            if is_postgres(session):
                query = query.with_for_update(of=Delivery, skip_locked=True)
            claimed = []
            for delivery, url, secret in session.execute(query).all():
                delivery.leased_until = lease
                claimed.append(Claimed(delivery.id, delivery.uuid, delivery.kind, url, secret,
                                       delivery.body))
            session.commit()
            return claimed

    def record(self, results: list[tuple[Claimed, Outcome]]) -> list[str]:
        """Store the outcomes of a round's attempts, in one transaction; returns each
        delivery's new status."""
        statuses = []
        with self.sessions() as session:
            now = utcnow()
            for item, outcome in results:
                delivery = session.get(Delivery, item.id)
                if delivery is None or delivery.status != "pending":
                    statuses.append(delivery.status if delivery else "gone")
                    continue
                self._apply(session, delivery, outcome, now)
                statuses.append(delivery.status)
            session.commit()
        return statuses

    def _apply(self, session: Session, delivery: Delivery, outcome: Outcome,
               now: datetime) -> None:
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        delivery.leased_until = None
        session.add(DeliveryAttempt(delivery_id=delivery.id, at=now,
                                    status_code=outcome.status_code, error=outcome.error,
                                    duration_ms=outcome.duration_ms))
        code = outcome.status_code
        if outcome.final:
            delivery.status = "failed"  # a target it may not send to: never sent
        elif code is not None and 200 <= code < 300:
            delivery.status, delivery.delivered_at = "delivered", now
        elif code is None or code >= 500 or code in RETRYABLE_STATUS:
            delay = backoff_seconds(delivery.attempts, self.settings, outcome.retry_after)
            next_at = now + timedelta(seconds=delay)
            if (next_at - delivery.created_at).total_seconds() > self.settings.webhook_max_age:
                delivery.status = "expired"
            else:
                delivery.next_attempt_at = next_at
        else:
            delivery.status = "failed"  # refused: sending it again cannot help

    # -- the network side -------------------------------------------------------------------

    async def send(self, client: httpx.AsyncClient, item: Claimed) -> Outcome:
        """One attempt. Whatever happens becomes an outcome: delivered, retried or failed."""
        start = time.perf_counter()

        def outcome(code, error, retry_after=None, final=False) -> Outcome:
            return Outcome(code, error if error is None else error[:MAX_REASON], retry_after,
                           (time.perf_counter() - start) * 1000, final)

        # the text first (the allow-list or the auth mode may have changed since it was saved)
        refusal = self.policy.url_refusal(item.url)
        if refusal:
            return outcome(None, f"refused: {refusal}", final=True)
        body = item.body.encode()
        try:
            headers = {"Content-Type": "application/json",
                       "User-Agent": f"ganwatch/{__version__}",
                       **signature_headers(item.secret, item.uuid, body),
                       "X-Ganwatch-Event": item.kind}
        except ValueError as exc:  # a secret stored before secrets were checked
            return outcome(None, f"refused: the webhook's secret cannot sign: {exc}", final=True)
        try:
            # streamed, and the body never read: only the status line and headers are used
            async with client.stream("POST", item.url, content=body,
                                     headers=headers) as response:
                code = response.status_code
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        except TargetRefused as exc:  # an address its host resolved to: never connected
            return outcome(None, f"refused: {exc}", final=True)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
            return outcome(None, f"refused: not a URL that can be sent to "
                                 f"({type(exc).__name__})", final=True)
        except httpx.HTTPError as exc:
            return outcome(None, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug must not kill the attempt: retried, and logged
            log.warning("webhook delivery %s failed unexpectedly", item.uuid, exc_info=True)
            return outcome(None, f"{type(exc).__name__}: unexpected error")
        return outcome(code, None if 200 <= code < 300 else status_reason(code), retry_after)

    async def _deliver(self, client: httpx.AsyncClient, item: Claimed,
                       results: list[tuple[Claimed, Outcome]]) -> None:
        try:
            result = await self.send(client, item)
        except Exception as exc:  # send() turns everything into an outcome; belt and braces
            log.warning("webhook delivery %s failed unexpectedly", item.uuid, exc_info=True)
            result = Outcome(None, f"{type(exc).__name__}: unexpected error", None, 0.0)
        results.append((item, result))

    async def _record(self, results: list[tuple[Claimed, Outcome]]) -> None:
        batch = results[:]
        del results[:len(batch)]
        statuses = await asyncio.to_thread(self.record, batch)
        for (item, outcome), status in zip(batch, statuses):
            metrics.DELIVERIES.labels("retry" if status == "pending" else status).inc()
            if status != "delivered":
                log.warning("webhook delivery %s to %s: %s (%s)", item.uuid, item.url, status,
                            outcome.error or outcome.status_code)

    async def run_forever(self) -> None:
        """Keep up to MAX_IN_FLIGHT deliveries in flight: a slow receiver holds its own
        deliveries, not everyone's. Outcomes are recorded in batches, one transaction each."""
        timeout = httpx.Timeout(self.settings.webhook_timeout, connect=5.0)
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
        inflight: set[asyncio.Task] = set()
        results: list[tuple[Claimed, Outcome]] = []
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()

        def start(item: Claimed) -> None:
            task = asyncio.create_task(self._deliver(client, item, results))
            inflight.add(task)
            task.add_done_callback(inflight.discard)

        # every connection through the address check; no proxy from the environment (the
        # checked address must be the one connected to)
        transport = GuardedTransport(self.policy, limits)
        async with httpx.AsyncClient(timeout=timeout, transport=transport, trust_env=False,
                                     follow_redirects=False) as client:
            try:
                while True:  # until the server shuts down (the task is cancelled)
                    self._wake.clear()
                    # handed over by this process: leased already, sent at once (beyond
                    # MAX_IN_FLIGHT if need be: each is a send the database already owes)
                    while self._handed:
                        start(self._handed.popleft())
                    try:
                        if results:
                            await self._record(results)
                        room = MAX_IN_FLIGHT - len(inflight)
                        for item in (await asyncio.to_thread(self.claim, room) if room > 0
                                     else []):
                            start(item)
                    except Exception:  # the database may be down for a while: try again
                        log.warning("webhook delivery round failed", exc_info=True)
                    metrics.IN_FLIGHT.set(len(inflight))
                    metrics.HANDED.set(len(self._handed))
                    if self._handed:
                        continue
                    waker = asyncio.create_task(self._wake.wait())
                    try:
                        await asyncio.wait(inflight | {waker},
                                           timeout=self.settings.webhook_poll_interval,
                                           return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waker.cancel()
            finally:
                self._loop = None
                for task in inflight:
                    task.cancel()
