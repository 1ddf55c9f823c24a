"""Start a real ganwatch server for a benchmark (loopback, a temporary data directory)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(database_url: str | None = None):
    """Yield the URL of a fresh server; stop it afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ganwatch-bench-") as data_dir:
        cmd = [sys.executable, "-m", "monitor", "serve", "--port", str(port), "--data-dir",
               data_dir]
        if database_url:
            cmd += ["--database-url", database_url]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ,
                                                                "GANWATCH_LOG_LEVEL": "warning"})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the benchmark's server did not start")
                time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")
