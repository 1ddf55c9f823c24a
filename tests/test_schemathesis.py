"""Schemathesis against the server's own OpenAPI schema: generated requests (documented
examples, boundary values, fuzzing) get no 5xx, no undocumented status, and responses that
match the schema. On SQLite and on PostgreSQL. Every route, the live stream too: its streams
last a fraction of a second here (GANWATCH_LIVE_STREAM_SECONDS), so each generated request
to it ends quickly, and it is fuzzed on a run that exists (its cursor and Last-Event-ID
generated; an unknown run's 404 is what every other run route answers), so the streaming 200
is what it exercises. What the stream says is tested in test_live.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BOTH_DATABASES, own_server

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(params=BOTH_DATABASES)
def fuzzed_server(request, tmp_path):
    """A server of its own: generated webhooks may only point at loopback (the allow-list),
    so no alert the fuzzing raises is ever sent off this machine."""
    env = {"GANWATCH_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1,::1,localhost",
           "GANWATCH_LIVE_STREAM_SECONDS": "0.2", "GANWATCH_LIVE_POLL_INTERVAL": "0.05"}
    with own_server(request.param, tmp_path, env) as proc:
        yield proc


def test_generated_requests_find_no_server_error_or_schema_violation(fuzzed_server, tmp_path):
    server = fuzzed_server
    if not SCHEMATHESIS.exists():
        pytest.skip(f"schemathesis is not installed beside {sys.executable}")
    with server.client() as api:
        run_id = api.post("/api/v1/runs", json={"name": "fuzzed stream"}).json()["id"]
    (tmp_path / "schemathesis.toml").write_text(  # read from the working directory
        '[[operations]]\ninclude-path-regex = "/events$"\n'
        f'parameters = {{ run_id = "{run_id}" }}\n')
    done = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{server.url}/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance",
         "--max-examples", "15", "--workers", "1", "--request-timeout", "20",
         "--phases", "examples,coverage,fuzzing",
         "--seed", "1", "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = done.stdout[-8000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    assert " passed" in done.stdout or "No issues found" in done.stdout, report
