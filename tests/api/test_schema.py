"""The Alembic migration creates exactly the schema the models describe, on SQLite and
PostgreSQL, and the server's SQLite store runs in WAL mode."""

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from monitor import migrate
from monitor.db import make_engine
from monitor.models import Base


def test_migration_matches_the_models_and_is_idempotent(database_url):
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # a second start changes nothing
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert set(inspect(engine).get_table_names()) >= {
            "runs", "series", "points", "samples", "ingested_batches", "alembic_version"}
    finally:
        engine.dispose()


def test_server_store_is_sqlite_in_wal_mode(server, api):
    if server.database_url:
        pytest.skip("this server runs on PostgreSQL")
    api.post("/api/v1/runs", json={"name": "wal"})
    db = sqlite3.connect(server.data_dir / "ganwatch.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
