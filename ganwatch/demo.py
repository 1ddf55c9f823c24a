"""``ganwatch demo``: a server on SQLite, the reference trainer streaming to it, the URLs printed.

The trainer runs in its own process: the server never imports torch.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

from trainer_client import protocol
from trainer_client.cli import PROG, fail

DEMO_RUN_NAME = "demo-dcgan-digits"


def _health(url: str) -> dict | None:
    try:
        response = httpx.get(url + protocol.HEALTH, timeout=1.0)
    except httpx.HTTPError:
        return None
    try:
        return response.json() if response.status_code == 200 else None
    except ValueError:
        return None


def _run_exists(url: str, run_id: str) -> bool:
    try:
        return httpx.get(url + protocol.run_path(run_id), timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def _port_taken(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_demo(*, port: int, data_dir: Path, steps: int, keep_serving: bool) -> int:
    url = f"http://127.0.0.1:{port}"
    server = None
    if _port_taken(port):
        if _health(url) is None:
            fail(PROG, f"port {port} is taken by something that is not a ganwatch server; "
                       "pass --port")
            return 2
        print(f"ganwatch: using the server already running at {url}", flush=True)
    else:
        server = subprocess.Popen([sys.executable, "-m", "ganwatch", "serve", "--port", str(port),
                                   "--data-dir", str(data_dir)])
        deadline = time.monotonic() + 60
        while _health(url) is None:
            if server.poll() is not None or time.monotonic() > deadline:
                fail(PROG, "the server did not start; see its output above")
                _stop(server)
                return 1
            time.sleep(0.1)  # waiting for the server to answer, bounded by the deadline
    print(f"ganwatch: dashboard {url}/", flush=True)
    # The demo names the trainer's run id (the client honours GANWATCH_RUN_ID), so the URL
    # printed below is this run's even when the server already holds older demo runs.
    run_id = secrets.token_hex(8)
    try:
        trainer = subprocess.run(
            [sys.executable, "-m", "trainer_client.dcgan", "--steps", str(steps),
             "--server", url, "--name", DEMO_RUN_NAME],
            env={**os.environ, "GANWATCH_RUN_ID": run_id})
        if _run_exists(url, run_id):
            print(f"ganwatch: dashboard {url}/ — this run: {url}/runs/{run_id}", flush=True)
        else:
            print(f"ganwatch: the trainer stored no run at {url} (exit code "
                  f"{trainer.returncode}); see its output above", file=sys.stderr, flush=True)
        if trainer.returncode != 0:
            return trainer.returncode
        if keep_serving and server is not None:
            print("ganwatch: the server keeps running; Ctrl-C stops it", flush=True)
            server.wait()
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None:
            _stop(server)


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
