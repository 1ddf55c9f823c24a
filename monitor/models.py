"""SQLAlchemy 2.0 models: runs, their series and points, sample grids, ingested batch ids, and
the rules engine's state (one row per watched fingerprint, the alerts, their notifications),
and webhooks with their outbox of deliveries.

Points are a narrow table written with bulk inserts. SQLite cannot store NaN (it turns it
into NULL), so on every database a NULL value *means* NaN; +Inf and -Inf are stored as they are.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timestamps in UTC that read back timezone-aware on SQLite too (it stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    # Whose run: tokens are per project (monitor/auth.py); "default" on an open server.
    project: Mapped[str] = mapped_column(String(100), default="default", index=True)
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The rules engine: per-run overrides {"rule": {"param": value}}, silenced rule names, the
    # client's declared check-in interval (seconds), when the last point arrived, and the last
    # step the rules were evaluated at.
    rules: Mapped[dict | None] = mapped_column(JSON, default=dict)
    silenced: Mapped[list | None] = mapped_column(JSON, default=list)
    checkin_interval: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_point_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    evaluated_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The GAN's loss family as the client declared it (monitor/rules/families.py), or as the
    # rules inferred it from what was logged; and the keys the client declared for roles
    # {"d_loss": "my_d"} (monitor/rules/vocabulary.py).
    loss: Mapped[str | None] = mapped_column(String(32), nullable=True)
    loss_inferred: Mapped[str | None] = mapped_column(String(32), nullable=True)
    key_map: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class Series(Base):
    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("run_id", "key", name="uq_series_run_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))


class Point(Base):
    __tablename__ = "points"
    __table_args__ = (Index("ix_points_series_step", "series_id", "step"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    series_id: Mapped[int] = mapped_column(BigInteger,
                                           ForeignKey("series.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Double, nullable=True)  # NULL = NaN
    wall_time: Mapped[float] = mapped_column(Double)


# Pre-aggregated min/max buckets of every series (monitor/store/rollups.py keeps and reads
# them): a Core table, read and upserted in bulk, never as ORM objects.
point_rollups = Table(
    "point_rollups", Base.metadata,
    Column("series_id", BigInteger, ForeignKey("series.id", ondelete="CASCADE"),
           primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("nonfinite", BigInteger, nullable=False),
    Column("min_value", Double, nullable=True),
    Column("min_step", BigInteger, nullable=True),
    Column("min_wall", Double, nullable=True),
    Column("max_value", Double, nullable=True),
    Column("max_step", BigInteger, nullable=True),
    Column("max_wall", Double, nullable=True),
)


class Sample(Base):
    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    step: Mapped[int] = mapped_column(BigInteger)
    wall_time: Mapped[float] = mapped_column(Double)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    png: Mapped[bytes] = mapped_column(LargeBinary)


class IngestedBatch(Base):
    """A client-made batch id, stored in the same transaction as the batch's data."""

    __tablename__ = "ingested_batches"

    # Scoped to the run: the same id in another run is another batch.
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    n_points: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    """One episode of a fingerprint (run, rule, subject): pending -> firing -> resolved."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_run_status", "run_id", "status"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | firing | resolved
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Double, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Double, nullable=True)
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    started_step: Mapped[int] = mapped_column(BigInteger)
    fired_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolved_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_step: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RuleState(Base):
    """The lifecycle state of one fingerprint, kept between evaluations (and across replicas)."""

    __tablename__ = "rule_states"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    status: Mapped[str] = mapped_column(String(16), default="inactive")
    pending_since: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fired_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    clear_since: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    resolved_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    alert_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("alerts.id", ondelete="SET NULL"), nullable=True)


class AlertEvent(Base):
    """A notification: one row per transition users are told about (firing, escalated, resolved),
    written in the same transaction as the alert's change. Webhook delivery reads these."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_run", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"),
                                          index=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # firing | escalated | resolved
    severity: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Webhook(Base):
    """A subscription: alert transitions matching its filters are delivered to its URL."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))  # signs deliveries; never returned
    format: Mapped[str] = mapped_column(String(16), default="generic")  # generic|slack|discord
    min_severity: Mapped[str] = mapped_column(String(16), default="warning")
    rules: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None: every rule
    run_ids: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None: every run
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """The outbox: one message to one webhook, written in the same transaction as the alert
    transition it reports, and delivered (with retries) by the server's delivery worker."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_deliveries_webhook", "webhook_id", "id"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)  # X-Ganwatch-Delivery
    webhook_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("alert_events.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # firing | escalated | resolved | test
    body: Mapped[str] = mapped_column(Text)  # the JSON sent, fixed when the row is written
    # pending (due at next_attempt_at) | delivered | failed (refused) | expired (too old)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeliveryAttempt(Base):
    """One HTTP attempt of a delivery, for the delivery log."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Double, default=0.0)


class ApiToken(Base):
    """An API token: ``gw_<id>_<secret>``; only a SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    project: Mapped[str] = mapped_column(String(100))  # "*" for admin tokens: every project
    scope: Mapped[str] = mapped_column(String(16))  # ingest | read | admin
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DashboardSession(Base):
    """A dashboard sign-in: the browser's cookie holds a random id of its own (never the token),
    of which only a SHA-256 is stored. It ends at ``expires_at``, on sign-out (``revoked_at``)
    or when its token is revoked."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
