"""Engine and session factory; SQLite gets WAL mode and a busy timeout."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
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


def make_sessionmaker(engine: Engine, public_url: str = "") -> sessionmaker[Session]:
    """Sessions carry the server's public URL (``session.info``) for links in webhook bodies."""
    return sessionmaker(engine, expire_on_commit=False, info={"public_url": public_url})


def after_commit(session: Session, queue: str, obj, item) -> None:
    """Queue ``item`` on ``session`` under ``queue``, to be handed over when the transaction
    commits, and only if ``obj`` (the row it is about) was committed with it: an item whose
    row went with a rolled-back savepoint or transaction is dropped."""
    session.info.setdefault(queue, []).append((obj, item))


def on_commit(sessions: sessionmaker[Session], queue: str, handle) -> None:
    """Call ``handle(items)`` with what each committed transaction of ``sessions`` queued under
    ``queue`` (see ``after_commit``)."""

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        queued = session.info.pop(queue, None)
        items = [item for obj, item in queued or () if inspect(obj).persistent]
        if items:
            handle(items)

    @event.listens_for(sessions, "after_transaction_end")
    def _ended(session: Session, transaction) -> None:
        if transaction.parent is None:  # the outermost ended: committed (handed) or not
            session.info.pop(queue, None)
