"""Feed synthetic series through the real ingest path and rules engine (an SQLite file per test),
and read back what a user would be told: the notifications and the alerts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from monitor import ingest, migrate
from monitor.db import make_engine, make_sessionmaker
from monitor.models import Alert, AlertEvent
from monitor.schemas import PointsBatch, RunCreate
from monitor.store import runs as run_store


@dataclass(frozen=True)
class Note:
    rule: str
    subject: str
    kind: str  # firing | escalated | resolved
    step: int
    severity: str


class Store:
    def __init__(self, path: Path) -> None:
        self.engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def run(self, rules: dict | None = None, checkin_interval: float | None = None,
            **create) -> str:
        """A new run; ``create``: more of what a client sends (loss, keys, config)."""
        with self.sessions() as session:
            run, _ = run_store.create_or_resume_run(session=session, run_create=RunCreate(
                name="synthetic", rules=rules or {}, checkin_interval=checkin_interval,
                **create))
            return run.id

    def coverage(self, run_id: str) -> dict[str, dict]:
        """What GET /runs/{id}/rules reports per rule: applies, watching, missing."""
        with self.sessions() as session:
            run = run_store.get_run(session=session, run_id=run_id)
            keys = run_store.series_keys(session=session, run_ids=[run_id])[run_id]
            return ingest.run_coverage(run, keys)

    def family(self, run_id: str) -> tuple[str, str]:
        with self.sessions() as session:
            return ingest.family_of(run_store.get_run(session=session, run_id=run_id))

    def feed(self, run_id: str, series: dict[str, list[float]], *, start: int = 0,
             batch: int = 50) -> list[str]:
        """Send ``series`` (one value per step from ``start``) in batches; returns batch ids."""
        n = max(len(v) for v in series.values())
        ids = []
        for lo in range(0, n, batch):
            body = {"batch_id": uuid.uuid4().hex, "series": {}}
            for key, values in series.items():
                chunk = values[lo:lo + batch]
                if chunk:
                    body["series"][key] = {
                        "steps": list(range(start + lo, start + lo + len(chunk))),
                        "values": chunk}
            self.post(run_id, body)
            ids.append(body["batch_id"])
        return ids

    def post(self, run_id: str, body: dict) -> tuple[int, bool]:
        with self.sessions() as session:
            return ingest.ingest_points(session=session, run_id=run_id,
                                        batch=PointsBatch.model_validate(body))

    def notes(self, run_id: str) -> list[Note]:
        with self.sessions() as session:
            rows = session.execute(
                select(Alert.rule, Alert.subject, AlertEvent.kind, AlertEvent.step,
                       AlertEvent.severity)
                .join(Alert, Alert.id == AlertEvent.alert_id)
                .where(AlertEvent.run_id == run_id).order_by(AlertEvent.id)).all()
        return [Note(*row) for row in rows]

    def alerts(self, run_id: str) -> list[Alert]:
        with self.sessions() as session:
            return list(session.scalars(select(Alert).where(Alert.run_id == run_id)
                                        .order_by(Alert.id)).all())
