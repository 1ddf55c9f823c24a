"""Schemathesis against the server's own OpenAPI schema: generated requests (documented
examples, boundary values, fuzzing) get no 5xx, no undocumented status, and responses that
match the schema. On SQLite and on PostgreSQL. Every route is fuzzed with generated path
parameters, the live stream too (an unknown run's 404 must be documented: a stored crash once
recorded that it was not). The stream is then fuzzed again on a run that exists, its cursor and
Last-Event-ID generated, so that the streaming 200 is what it exercises; its streams last a
fraction of a second here (GANWATCH_LIVE_STREAM_SECONDS), so each request ends quickly. What
the stream says is tested in test_live.py. Schemathesis writes its crash cache into its working
directory, a temporary one: nothing lands in the repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import BOTH_DATABASES, own_server

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
    everything = schemathesis(server.url, tmp_path / "every-route", "--max-examples", "15")
    with server.client() as api:
        run_id = api.post("/api/v1/runs", json={"name": "fuzzed stream"}).json()["id"]
    config = tmp_path / "stream" / "schemathesis.toml"
    config.parent.mkdir()
    config.write_text('[[operations]]\ninclude-path-regex = "/events$"\n'
                      f'parameters = {{ run_id = "{run_id}" }}\n')
    stream = schemathesis(server.url, config.parent, "--max-examples", "15",
                          "--include-path-regex", "/events$", config_file=config)
    for done in (everything, stream):
        report = done.stdout[-8000:] + done.stderr[-2000:]
        assert done.returncode == 0, report
        assert " passed" in done.stdout or "No issues found" in done.stdout, report


def schemathesis(url: str, workdir: Path, *options: str,
                 config_file: Path | None = None) -> subprocess.CompletedProcess:
    workdir.mkdir(exist_ok=True)
    config = ["--config-file", str(config_file)] if config_file else []
    return subprocess.run(
        [str(SCHEMATHESIS), *config, "run", f"{url}/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance",
         "--workers", "1", "--request-timeout", "20",
         "--phases", "examples,coverage,fuzzing", "--seed", "1", "--no-color", *options],
        capture_output=True, text=True, timeout=600, cwd=workdir)
