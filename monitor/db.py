"""Engine and session factory; SQLite gets WAL mode and a busy timeout."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        # psycopg 3 is what the [postgres] extra installs; plain postgresql:// means it too.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def is_postgres(bind) -> bool:
    """Whether ``bind`` (an engine, a connection, a session or a dialect) talks to PostgreSQL:
    one place that asks which database this is (the other is SQLite)."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    return getattr(bind, "dialect", bind).name == "postgresql"


def is_psycopg(bind) -> bool:
    """PostgreSQL through psycopg 3 (what the [postgres] extra installs): COPY and LISTEN are
    available."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    dialect = getattr(bind, "dialect", bind)
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
