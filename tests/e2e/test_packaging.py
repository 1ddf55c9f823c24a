"""The built wheel carries the server, its migrations and the dashboard, and runs from it."""

import os
import subprocess
import sys
import zipfile

from tests.support import ROOT, ServerProcess


def test_wheel_serves_the_dashboard_outside_the_checkout(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("ganwatch-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(site)
    assert {"monitor/web/index.html", "monitor/web/run.js",
            "monitor/migrations/versions/0001_initial.py", "trainer_client/dcgan/train.py",
            "monitor/migrations/versions/0003_webhooks.py", "monitor/webhooks/worker.py",
            "monitor/rules/library.py"} <= names
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = ServerProcess(data_dir=tmp_path / "data", cwd=elsewhere,
                           env={"PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"})
    server.start()
    try:
        with server.client() as api:
            health = api.get("/api/v1/health")
            assert health.status_code == 200
            page = api.get("/")
            assert page.status_code == 200 and "Runs" in page.text
            assert api.get("/static/runs.js").status_code == 200
        assert os.path.exists(tmp_path / "data" / "ganwatch.db")
    finally:
        server.stop()
