"""Shared by the benchmarks: start a real ``ganwatch serve`` (loopback, a temporary data
directory) and describe the machine the figures come from."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_command() -> list[str]:
    """The venv's ``ganwatch`` console script when it sits beside this Python, else -m ganwatch."""
    script = Path(sys.executable).with_name("ganwatch")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), "serve"]
    return [sys.executable, "-m", "ganwatch", "serve"]


@contextmanager
def running_server(database_url: str | None = None, source: Path = ROOT):
    """Yield the URL of a fresh server on a free loopback port; stop it afterwards.
    ``source``: the checkout whose server runs (another one's, to measure before a change)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ganwatch-bench-") as data_dir:
        # an older checkout (a baseline) may predate the ganwatch package: python -m monitor
        package = "ganwatch" if (source / "ganwatch").is_dir() else "monitor"
        serve = _serve_command() if source == ROOT else [sys.executable, "-m", package, "serve"]
        cmd = serve + ["--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir]
        if database_url:
            cmd += ["--database-url", database_url]
        env = {**os.environ, "GANWATCH_LOG_LEVEL": "warning"}
        if source != ROOT:
            env["PYTHONPATH"] = str(source)
        log_path = Path(data_dir) / "server.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=source, stdout=log, stderr=subprocess.STDOUT,
                                    env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S  # a bounded poll of /api/v1/health
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise SystemExit(f"the benchmark's server did not start ({' '.join(cmd)}):"
                                     f"\n{tail}")
                time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def cpu_model() -> str:
    """lscpu's 'Model name' (else /proc/cpuinfo's, else platform's)."""
    if shutil.which("lscpu"):
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                                 env={**os.environ, "LC_ALL": "C"}).stdout
            for line in out.splitlines():
                if line.startswith("Model name:"):
                    return line.split(":", 1)[1].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    load = ""
    if hasattr(os, "getloadavg"):
        one, five, fifteen = os.getloadavg()
        load = f", load average {one:.2f} {five:.2f} {fifteen:.2f}"
    return (f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}, "
            f"Python {platform.python_version()}{load}")
