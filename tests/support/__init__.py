"""Test helpers shared by tests/unit, tests/api and tests/e2e: a real ``ganwatch serve``
process on a free loopback port (``ServerProcess``), a fresh PostgreSQL database per caller,
the real CLI, and polling for what a user could observe. The fixtures that use them are in
tests/conftest.py; the webhook receiver is ``tests.support.receiver``, the rules harness
``tests.support.rules_harness``."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A ganwatch server in its own process, which a test can kill and start again."""

    def __init__(self, *, data_dir: Path, database_url: str | None = None,
                 port: int | None = None, env: dict | None = None,
                 cwd: Path = ROOT) -> None:
        self.data_dir = data_dir
        self.cwd = cwd
        self.env = env or {}
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "ganwatch", "serve", "--port", str(self.port),
               "--data-dir", str(self.data_dir)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env})
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n"
                                   + self.log.read_text()[-3000:])
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # polling for readiness, bounded by the deadline
        raise RuntimeError("server did not become healthy:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing, like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


def _postgres_url() -> str | None:
    return os.environ.get("GANWATCH_TEST_DATABASE_URL") or None


@contextmanager
def fresh_postgres_database():
    """A new, empty PostgreSQL database (its URL), dropped afterwards; skips if unavailable."""
    url = _postgres_url()
    if not url:
        pytest.skip("GANWATCH_TEST_DATABASE_URL is not set: PostgreSQL tests need a server")
    try:
        import psycopg
        from sqlalchemy.engine import make_url
    except ImportError as exc:
        pytest.skip(f"psycopg is not installed ({exc})")
    base = make_url(url).set(drivername="postgresql")
    name = f"ganwatch_test_{secrets.token_hex(4)}"
    conninfo = base.render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {base.render_as_string()} is unreachable: {exc}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def own_server(database: str, tmp_path: Path, env: dict | None = None):
    """A started server of the test's own (not shared), on "sqlite" or "postgresql"."""
    if database == "sqlite":
        proc = ServerProcess(data_dir=tmp_path / "server", env=env).start()
        try:
            yield proc
        finally:
            proc.stop()
        return
    with fresh_postgres_database() as url:
        proc = ServerProcess(data_dir=tmp_path / "server", database_url=url, env=env).start()
        try:
            yield proc
        finally:
            proc.stop()


BOTH_DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def ganwatch(server: ServerProcess, *argv) -> subprocess.CompletedProcess:
    """The real CLI (``python -m ganwatch ...``) against a server's database."""
    where = (["--database-url", server.database_url] if server.database_url
             else ["--data-dir", str(server.data_dir)])
    return subprocess.run([sys.executable, "-m", "ganwatch", *argv, *where],
                          capture_output=True, text=True, timeout=60)


def make_token(server: ServerProcess, scope: str, project: str | None = None,
               name: str | None = None) -> str:
    """A token made with the real CLI, as an operator would (``ganwatch token create``)."""
    argv = ["token", "create", "--scope", scope, "--name", name or f"test {scope} {project}"]
    if project:
        argv += ["--project", project]
    done = ganwatch(server, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def series(client: httpx.Client, run_id: str, key: str, **params) -> dict:
    response = client.get(f"/api/v1/runs/{run_id}/series", params={"key": key, **params})
    assert response.status_code == 200, response.text
    return response.json()["series"][0]


def poll(read, *, until, timeout: float = 30.0):
    """Read a value a user could observe until ``until(value)`` holds or the deadline passes;
    the last value read (for the test to assert on)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not until(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll a condition a user could observe, up to a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
