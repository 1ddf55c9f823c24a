"""docker-compose.yml and the Dockerfile: parsed (no Docker engine here), checked against what
the README says, and the compose file's own PostgreSQL configuration exercised on a real
PostgreSQL: its URL, with `ganwatch migrate` as its migration step, then `ganwatch serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.support import ROOT, ServerProcess, _postgres_url

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
README = (ROOT / "README.md").read_text()


def env(service: str) -> dict:
    return COMPOSE["services"][service].get("environment", {})


def test_compose_has_postgres_a_migration_step_and_the_server_in_order():
    services = COMPOSE["services"]
    assert set(services) == {"db", "migrate", "server"}
    assert services["db"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["ganwatch", "migrate"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    server = services["server"]
    assert server["command"][:2] == ["ganwatch", "serve"]
    assert server["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "/api/v1/health" in " ".join(server["healthcheck"]["test"])
    assert "8765:8765" in server["ports"]
    # one database, as the db service creates it
    url = make_url(env("server")["GANWATCH_DATABASE_URL"])
    assert env("migrate")["GANWATCH_DATABASE_URL"] == env("server")["GANWATCH_DATABASE_URL"]
    db = env("db")
    assert (url.get_backend_name(), url.host, url.port) == ("postgresql", "db", 5432)
    assert (url.username, url.password, url.database) == (
        db["POSTGRES_USER"], db["POSTGRES_PASSWORD"], db["POSTGRES_DB"])


def test_dockerfile_installs_the_postgres_extra_and_serves():
    assert re.search(r'pip install .*"\.\[postgres\]"', DOCKERFILE)
    assert 'CMD ["ganwatch", "serve"]' in DOCKERFILE
    assert "EXPOSE 8765" in DOCKERFILE
    copied = set()  # the sources of every COPY instruction (the last word is the destination)
    for line in DOCKERFILE.splitlines():
        words = line.split()
        if words and words[0] == "COPY":
            copied.update(w for w in words[1:-1] if not w.startswith("--"))
    assert {"monitor", "trainer_client", "ganwatch", "web", "pyproject.toml",
            "README.md"} <= copied


def test_the_readme_names_what_the_compose_file_runs():
    section = README[README.index("### PostgreSQL with docker compose"):]
    section = section[:section.index("\n### ", 5)]
    assert "docker compose up -d" in section
    for name in COMPOSE["services"]:
        assert f"`{name}`" in section
    assert "http://127.0.0.1:8765/" in section
    assert "ganwatch migrate" in section


@pytest.mark.postgres
def test_the_compose_configuration_migrates_and_serves_on_a_real_postgres(tmp_path):
    """The compose file's role, password and database name, on this machine's PostgreSQL
    (host db -> 127.0.0.1): the migration step, then the server, as compose runs them."""
    admin = _postgres_url()
    if not admin:
        pytest.skip("GANWATCH_TEST_DATABASE_URL is not set: PostgreSQL tests need a server")
    psycopg = pytest.importorskip("psycopg")
    url = make_url(env("server")["GANWATCH_DATABASE_URL"])
    base = make_url(admin).set(drivername="postgresql")
    name = f"{url.database}_compose_{os.getpid()}"
    try:
        conn = psycopg.connect(base.render_as_string(hide_password=False), autocommit=True,
                               connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is unreachable: {exc}")
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                              (url.username,)).fetchone()
        if not exists:
            conn.execute(f'CREATE ROLE "{url.username}" LOGIN PASSWORD \'{url.password}\'')
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{url.username}"')
    local = url.set(host=base.host or "127.0.0.1", port=base.port or 5432, database=name)
    local_url = local.render_as_string(hide_password=False)
    server = None
    try:
        done = subprocess.run([sys.executable, "-m", "ganwatch", "migrate", "--database-url",
                               local_url], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "newest schema" in done.stdout
        with psycopg.connect(local_url, connect_timeout=5) as c:
            version = c.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        heads = sorted(p.name.split("_")[0] for p in
                       (ROOT / "monitor" / "migrations" / "versions").glob("0*.py"))
        assert version == heads[-1]
        server = ServerProcess(data_dir=tmp_path / "server", database_url=local_url).start()
        health = httpx.get(f"{server.url}/api/v1/health", timeout=10).json()
        assert health["status"] == "ok"
    finally:
        if server:
            server.stop()
        with psycopg.connect(base.render_as_string(hide_password=False), autocommit=True,
                             connect_timeout=5) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_on_a_bad_url_is_one_line_not_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ganwatch", "migrate", "--database-url",
                           "postgresql://nobody@127.0.0.1:1/none"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("ganwatch: error: could not migrate")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
