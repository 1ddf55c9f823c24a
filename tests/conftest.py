"""Fixtures: a real ``ganwatch serve`` process on a free loopback port, on SQLite and (when
GANWATCH_TEST_DATABASE_URL points at a reachable server) on PostgreSQL. The helpers behind them
are in tests/support."""

from __future__ import annotations

import pytest

from tests.support import ServerProcess, fresh_postgres_database


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test session's server."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory):
    """A running server shared by the tests of a session (each test makes its own runs)."""
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres_database")
    proc = ServerProcess(data_dir=tmp_path_factory.mktemp(f"server-{request.param}"),
                         database_url=database_url).start()
    yield proc
    proc.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """An empty database of the test's own: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ganwatch.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def api(server):
    with server.client() as client:
        yield client


@pytest.fixture
def sqlite_server(tmp_path):
    """A server of the test's own, which the test may kill and restart."""
    proc = ServerProcess(data_dir=tmp_path / "server")
    yield proc
    proc.stop()


@pytest.fixture
def spool_dir(tmp_path, monkeypatch):
    path = tmp_path / "spool"
    monkeypatch.setenv("GANWATCH_SPOOL_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def _client_warnings_start_fresh():
    """Each test sees the client's warnings as a new process would: none held back yet."""
    from trainer_client import log

    log._last.clear()
    log._held.clear()
    yield
