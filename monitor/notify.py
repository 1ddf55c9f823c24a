"""Wake-ups for the dashboard's live streams when a run changes, across replicas.

On PostgreSQL, every transaction that adds points or a sample grid sends ``NOTIFY ganwatch,
'<run id>'`` (delivered at commit, to every replica), and each server process keeps one
connection that LISTENs and wakes the streams of that run at once. The streams still poll the
database (``GANWATCH_LIVE_POLL_INTERVAL``) as a fallback and as the only mechanism on SQLite,
where replicas share a file and there is nothing to listen to.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from sqlalchemy import text
from sqlalchemy.orm import Session

from monitor.db import is_postgres

log = logging.getLogger("ganwatch.notify")
CHANNEL = "ganwatch"


def notify_run(session: Session, run_id: str) -> None:
    """Queue a wake-up for ``run_id``'s streams; PostgreSQL sends it when the transaction
    commits (and drops it if it rolls back). Nothing to do on SQLite."""
    if is_postgres(session):
        session.execute(text("SELECT pg_notify(:channel, :run_id)"),
                        {"channel": CHANNEL, "run_id": run_id})


class Listener:
    """One LISTEN connection per process; streams subscribe to a run id and get an Event."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.connected = False

    def subscribe(self, run_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self.subscribers[run_id].add(event)
        return event

    def unsubscribe(self, run_id: str, event: asyncio.Event) -> None:
        events = self.subscribers.get(run_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self.subscribers[run_id]

    def wake(self, run_id: str) -> None:
        for event in self.subscribers.get(run_id, ()):
            event.set()

    async def run_forever(self, conninfo: str) -> None:
        import psycopg

        delay = 1.0
        while True:  # until the server shuts down (the task is cancelled)
            try:
                async with await psycopg.AsyncConnection.connect(
                        conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected, delay = True, 1.0
                    async for note in conn.notifies():
                        self.wake(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarts: listen again, streams still poll
                log.warning("live-stream notifications lost (%s); retrying in %.0f s", exc, delay)
            self.connected = False
            for events in list(self.subscribers.values()):  # catch up by polling once
                for event in events:
                    event.set()
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)
