"""Server-sent events for the dashboard: a run's new points, sample grids and alert changes.

``GET /api/v1/runs/{run_id}/events`` streams ``text/event-stream``. The stream reads the
database (not the process's memory), so a page connected to one replica sees what another
ingested, and it resumes where it left off: every event carries an id ``P.S.A`` (the last point,
sample and alert ids it has seen), which the browser's ``EventSource`` sends back as
``Last-Event-ID`` when it reconnects, after a network error or a server restart. A stream ends
after ``live_stream_seconds`` (the browser reconnects at once, resuming), so no request is
held forever and a server can shut down promptly. On a server that requires tokens, a stream
also ends at the first poll after its token is revoked or its dashboard session ends. On
PostgreSQL a stream is woken at once by the NOTIFY that any replica's ingest sends
(monitor/notify.py); it also polls every ``live_poll_interval``, the only mechanism on SQLite.

Events:

- ``hello`` (first, always): ``{"cursor": "P.S.A"}``, where the stream starts;
- ``points``: ``{"series": {key: {"steps": [...], "values": [...]}}}``, new points in step
  order (non-finite values as the strings "NaN", "Infinity", "-Infinity"); a key with more than
  ``LIVE_POINTS_PER_KEY`` new points in one poll is thinned to that many, keeping the first,
  the last and every non-finite value;
- ``samples``: ``{"samples": [sample, ...]}``, as ``GET .../samples`` lists them;
- ``alerts``: ``{"events": [{"kind", "step", "alert_id"}, ...], "new_alerts": [ids]}``: alert
  transitions (firing, escalated, resolved) and newly opened (pending) alerts; the page reads
  the alerts again;
- ``run``: ``{"last_step", "status"}`` when it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from dataclasses import dataclass, replace

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor import metrics
from monitor.api.deps import SessionDep, SettingsDep, require
from monitor.api.routes.samples import sample_public
from monitor.auth import Role, still_valid
from monitor.encoding import json_number
from monitor.models import Alert, AlertEvent, Point, Run, Sample, Series
from monitor.schemas import ErrorPublic
from monitor.store import runs as run_store
from monitor.store import samples as sample_store
from monitor.store import series as series_store

router = APIRouter(prefix="/runs/{run_id}/events", tags=["live"])

LIVE_POINTS_PER_KEY = 2000   # per key per event; more are thinned
SCAN_LIMIT = 50_000          # points read per poll (all runs'); the rest comes next poll
KEEPALIVE_SECONDS = 10.0
CURSOR = re.compile(r"[0-9]+(?:\.[0-9]+){3}", re.ASCII)
MAX_ID = 2**63 - 1  # the largest id a 64-bit integer column holds


@dataclass
class Cursor:
    points: int = 0
    samples: int = 0
    alerts: int = 0  # the last alert event id
    alert_rows: int = 0  # the last alert id (new pending alerts have no event)

    def __str__(self) -> str:
        return f"{self.points}.{self.samples}.{self.alerts}.{self.alert_rows}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """The cursor a client sent back, or None for anything this server cannot have made
        (the stream then starts from now). Only ASCII digits: ``int()`` also reads "1_0" and
        other scripts' digits. Ids fit a 64-bit column: a larger one cannot be compared on
        SQLite, so every poll of that stream would fail and it would stay silent."""
        if not text or not CURSOR.fullmatch(text.strip()):
            return None
        parts = [int(p) for p in text.strip().split(".")]
        if max(parts) > MAX_ID:
            return None
        return cls(*parts)


class RunFeed:
    """What changed in one run since a cursor; each ``poll`` moves the cursor past it."""

    def __init__(self, run_id: str, cursor: Cursor) -> None:
        self.run_id = run_id
        self.cursor = cursor
        self.keys: dict[int, str | None] = {}  # series id -> key (None: another run's)
        self.run_state: tuple | None = None

    @staticmethod
    def current(session: Session, run_id: str) -> Cursor:
        """The newest ids now: a stream opened without ``Last-Event-ID`` starts here."""
        p = session.scalar(select(func.max(Point.id))) or 0
        s = session.scalar(select(func.max(Sample.id)).where(Sample.run_id == run_id)) or 0
        a = session.scalar(select(func.max(AlertEvent.id)).where(
            AlertEvent.run_id == run_id)) or 0
        r = session.scalar(select(func.max(Alert.id)).where(Alert.run_id == run_id)) or 0
        return Cursor(p, s, a, r)

    def _key(self, session: Session, series_id: int) -> str | None:
        if series_id not in self.keys:
            for sid, key, run_id in session.execute(
                    select(Series.id, Series.key, Series.run_id).where(Series.id == series_id)):
                self.keys[sid] = key if run_id == self.run_id else None
            self.keys.setdefault(series_id, None)
        return self.keys[series_id]

    def poll(self, session: Session) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        cur = replace(self.cursor)  # moved only once the whole poll succeeded
        # Points by id (the primary key): an index range scan on any database, whatever the
        # number of points the run already has; other runs' points are skipped here.
        rows = session.execute(
            select(Point.id, Point.series_id, Point.step, Point.value)
            .where(Point.id > cur.points).order_by(Point.id).limit(SCAN_LIMIT)).all()
        series: dict[str, tuple[list, list]] = {}
        for _pid, sid, step, value in rows:
            key = self._key(session, sid)
            if key is not None:
                steps, values = series.setdefault(key, ([], []))
                steps.append(step)
                values.append(math.nan if value is None else value)
        if rows:
            cur.points = rows[-1][0]
        if series:
            out = {}
            for key, (steps, values) in series.items():
                order = sorted(range(len(steps)), key=steps.__getitem__)
                steps, values = series_store.downsample(
                    [steps[i] for i in order], [values[i] for i in order], LIVE_POINTS_PER_KEY)
                out[key] = {"steps": steps, "values": [json_number(v) for v in values]}
            events.append(("points", {"series": out}))

        samples = session.execute(
            select(*sample_store.SAMPLE_COLUMNS)
            .where(Sample.run_id == self.run_id, Sample.id > cur.samples)
            .order_by(Sample.id).limit(500)).all()
        if samples:
            cur.samples = samples[-1].id
            events.append(("samples", {"samples": [
                sample_public(s).model_dump(mode="json") for s in samples]}))

        changes = session.execute(
            select(AlertEvent.id, AlertEvent.alert_id, AlertEvent.kind, AlertEvent.step)
            .where(AlertEvent.run_id == self.run_id, AlertEvent.id > cur.alerts)
            .order_by(AlertEvent.id).limit(500)).all()
        opened = session.scalars(
            select(Alert.id).where(Alert.run_id == self.run_id,
                                   Alert.id > cur.alert_rows)
            .order_by(Alert.id).limit(500)).all()
        if changes:
            cur.alerts = changes[-1].id
        if opened:
            cur.alert_rows = opened[-1]
        if changes or opened:
            events.append(("alerts", {
                "events": [{"kind": c.kind, "step": c.step, "alert_id": c.alert_id}
                           for c in changes],
                "new_alerts": list(opened)}))

        state = session.execute(select(Run.last_step, Run.status)
                                .where(Run.id == self.run_id)).first()
        if state is not None and tuple(state) != self.run_state:
            if self.run_state is not None:
                events.append(("run", {"last_step": state[0], "status": state[1]}))
            self.run_state = tuple(state)
        self.cursor = cur
        return events


def sse(event: str, data: dict, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get("", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "A stream of server-sent events"},
                       404: {"model": ErrorPublic, "description": "No such run"}},
            dependencies=[Depends(require(Role.read))])
async def run_events(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    run_id: str,
    cursor: str | None = Query(None, description="Resume after this cursor (as Last-Event-ID)"),
    last_event_id: str | None = Header(None),
) -> StreamingResponse:
    """A run's new points, sample grids and alert changes as server-sent events (see the
    module's documentation for the event types)."""
    run_store.get_run(session=session, run_id=run_id)
    start = Cursor.parse(last_event_id) or Cursor.parse(cursor) or RunFeed.current(session,
                                                                                    run_id)
    session.close()  # the stream uses sessions of its own, one per poll
    feed = RunFeed(run_id, start)
    sessions = request.app.state.sessionmaker
    interval = settings.live_poll_interval
    rounds = int(settings.live_stream_seconds * 100) + 10  # at most ~100 polls a second

    def poll() -> list[tuple[str, dict]] | None:
        """The new events; None once the token or session that opened the stream is no
        longer valid (revoked, signed out, expired): the stream ends there, not at its
        deadline, and the browser's reconnection is refused."""
        with sessions() as s:
            if not still_valid(request, s):
                return None
            return feed.poll(s)

    async def stream():
        metrics.LIVE_STREAMS.inc()
        try:
            async for chunk in events():
                yield chunk
        finally:
            metrics.LIVE_STREAMS.dec()
            listener.unsubscribe(run_id, wake)

    listener = request.app.state.listener
    wake = listener.subscribe(run_id)

    async def events():
        yield b"retry: 1000\n\n"
        yield sse("hello", {"cursor": str(feed.cursor)}, str(feed.cursor))
        deadline = time.monotonic() + settings.live_stream_seconds
        last_sent = time.monotonic()
        for _ in range(rounds):  # bounded; a stream ends at its deadline and the browser
            if await request.is_disconnected():  # reconnects, resuming from its cursor
                return
            try:
                events = await asyncio.to_thread(poll)
            except Exception:  # the database is away for a moment: the next poll retries
                events = []
            if events is None:
                return
            for name, data in events:
                yield sse(name, data, str(feed.cursor))
            now = time.monotonic()
            if events:
                last_sent = now
            elif now - last_sent >= KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                last_sent = now
            if now >= deadline:
                return
            # woken at once by a NOTIFY from whichever replica stored something (PostgreSQL),
            # or polling after `interval` (SQLite, or notifications lost)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=min(
                    interval, deadline - now, KEEPALIVE_SECONDS))
            wake.clear()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
