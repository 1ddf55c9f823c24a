"""The server is down, or dies, while training runs: every step still arrives exactly once."""

import subprocess
import sys

import trainer_client
from tests.support import series, wait_until


def steps_of(server, run_id, key="x"):
    with server.client() as client:
        return series(client, run_id, key, max_points=100_000)["steps"]


def test_server_down_at_start_then_up_every_step_arrives_once(sqlite_server, spool_dir):
    run = trainer_client.init("outage-start", server=sqlite_server.url, flush_interval=0.05)
    for step in range(200):
        run.log(x=float(step), y=step * 2.0)
    # The user can see the batches waiting on disk while the server is down.
    wait_until(lambda: len(list((spool_dir / run.id).glob("*.msg"))) >= 2, what="spooled batches")
    sqlite_server.start()
    for step in range(200, 400):
        run.log(x=float(step), y=step * 2.0)
    run.finish(timeout=60)
    assert steps_of(sqlite_server, run.id) == list(range(400))
    assert steps_of(sqlite_server, run.id, "y") == list(range(400))
    assert not (spool_dir / run.id).exists()


def test_server_killed_mid_run_and_restarted_every_step_arrives_once(sqlite_server, spool_dir):
    sqlite_server.start()
    run = trainer_client.init("outage-kill", server=sqlite_server.url, flush_interval=0.05)
    for step in range(150):
        run.log(x=float(step))
    def some_points_stored():
        with sqlite_server.client() as client:
            response = client.get(f"/api/v1/runs/{run.id}")
            return response.status_code == 200 and "x" in response.json()["series_keys"]

    wait_until(some_points_stored, what="first points stored")
    sqlite_server.kill()
    for step in range(150, 300):
        run.log(x=float(step))
    wait_until(lambda: any((spool_dir / run.id).glob("*.msg")), what="spooled batches")
    sqlite_server.start()
    for step in range(300, 450):
        run.log(x=float(step))
    run.finish(timeout=60)
    assert steps_of(sqlite_server, run.id) == list(range(450))
    with sqlite_server.client() as client:
        assert client.get(f"/api/v1/runs/{run.id}").json()["status"] == "finished"


def test_unsent_data_is_reported_and_replayed_later(sqlite_server, spool_dir, capfd):
    run = trainer_client.init("outage-exit", server=sqlite_server.url, flush_interval=0.05)
    for step in range(50):
        run.log(x=float(step), nan=float("nan"))
    run.finish(timeout=5)
    err = capfd.readouterr().err
    assert "were not sent" in err
    assert "100 points" in err and str(spool_dir / run.id) in err  # 50 of x, 50 of nan
    assert f"ganwatch spool send {spool_dir / run.id}" in err
    status = subprocess.run([sys.executable, "-m", "ganwatch", "spool", "status",
                             str(spool_dir)], capture_output=True, text=True, timeout=60)
    assert f"{run.id}: " in status.stdout and "100 points" in status.stdout, status.stdout
    replayed = subprocess.run([sys.executable, "-m", "ganwatch", "replay", str(spool_dir / run.id),
                               "--server", "http://127.0.0.1:9"], capture_output=True,
                              text=True, timeout=60)
    assert replayed.returncode == 2 and "spool send" in replayed.stderr  # one command, one job
    sqlite_server.start()
    done = subprocess.run([sys.executable, "-m", "ganwatch", "spool", "send",
                           str(spool_dir / run.id), "--server", sqlite_server.url],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "sent " in done.stdout
    assert steps_of(sqlite_server, run.id) == list(range(50))
    assert series(sqlite_server.client(), run.id, "nan")["values"] == ["NaN"] * 50


def test_a_new_client_sends_what_an_earlier_one_left(sqlite_server, spool_dir):
    first = trainer_client.init("left-behind", server=sqlite_server.url, flush_interval=0.05)
    for step in range(30):
        first.log(x=float(step))
    first.finish(timeout=2)
    assert any((spool_dir / first.id).glob("*.msg"))
    sqlite_server.start()
    second = trainer_client.init("next-run", server=sqlite_server.url, flush_interval=0.05)
    second.log(x=1.0)
    second.finish(timeout=60)
    assert steps_of(sqlite_server, first.id) == list(range(30))
    assert not (spool_dir / first.id).exists()
