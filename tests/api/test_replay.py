"""``ganwatch replay FILE``: recorded runs (JSON Lines, one step per line) go through the same
ingest path and rules as live ones. The reference trainer's recorded presets replay to the
alerts they are known for; records from the trainer and from other tools are read; bad files are
one-line errors that create nothing."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

import trainer_client
from tests.support import ROOT, series

RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "records"

# What each recorded preset shows (see trainer_client/dcgan/config.py PRESETS), as the rules
# that must fire; and for every record, the rules that must not.
EXPECTED = {
    "healthy-ring8": set(),
    "healthy-digits": set(),
    "d-wins": {"d_loss_zero", "d_overpowering", "vanishing_g_gradient"},
    "diverge": {"non_finite"},  # NaN within a few steps: faster than any gradient window
    "collapse": {"mode_collapse"},
}


def ganwatch(*argv, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganwatch", *map(str, argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def replayed_run_id(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "/runs/" in x)
    return line.rsplit("/runs/", 1)[1].strip()


@pytest.fixture
def sqlite_only(server):
    if server.database_url:
        pytest.skip("the replayed records are checked once, on the SQLite server")
    return server


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_presets_replay_to_their_alerts(sqlite_only, api, name):
    path = RECORDS / f"{name}.jsonl.gz"
    done = ganwatch("replay", path, "--server", sqlite_only.url, "--name", f"replay-{name}")
    run_id = replayed_run_id(done)
    alerts = api.get("/api/v1/alerts", params={"run_id": run_id, "limit": 1000}).json()["data"]
    fired = {a["rule"] for a in alerts if a["fired_step"] is not None}
    assert fired == EXPECTED[name], done.stdout
    if not fired:
        assert "no alerts" in done.stdout
    for alert in alerts:  # the verdict is printed, one line per alert
        assert f"({alert['rule']})" in done.stdout
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "finished" and run["name"] == f"replay-{name}"
    with gzip.open(path, "rt") as f:
        steps = [json.loads(line)["step"] for line in f if '"step"' in line[:12]]
    assert run["last_step"] == max(steps)


def test_trainer_records_every_step_offline_and_the_record_replays(sqlite_only, api, tmp_path):
    record = tmp_path / "ring8.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "trainer_client.dcgan", "--dataset", "ring8", "--steps", "30",
         "--no-server", "--record", str(record), "--out", str(tmp_path / "out"),
         "--sample-every", "0", "--name", "recorded"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in record.read_text().splitlines()]
    header, steps = lines[0], lines[1:]
    assert header["ganwatch_record"] == 1 and header["name"] == "recorded"
    assert header["config"]["dataset"] == "ring8"
    by_step = {}
    for line in steps:
        by_step.setdefault(line["step"], {}).update(line)
    assert sorted(by_step) == list(range(30))
    keys = set(by_step[5])
    assert {"d_loss", "g_loss", "d_real", "d_fake", "grad_norm/G", "grad_norm/D",
            "diversity/ratio"} <= keys
    assert any(k.startswith("grad_norm/G/") for k in keys)  # per layer too

    run_id = replayed_run_id(ganwatch("replay", record, "--server", sqlite_only.url))
    stored = series(api, run_id, "d_loss")
    assert stored["steps"] == list(range(30))
    assert stored["values"] == pytest.approx([by_step[s]["d_loss"] for s in range(30)])
    assert api.get(f"/api/v1/runs/{run_id}").json()["name"] == "recorded"


def test_client_records_while_streaming(sqlite_only, api, tmp_path, spool_dir):
    record = tmp_path / "live.jsonl.gz"
    run = trainer_client.init("live-and-recorded", server=sqlite_only.url, record=record,
                              flush_interval=0.05)
    for step in range(40):
        run.log(step=step, d_loss=1.0 / (step + 1), g_loss=math.nan if step == 7 else 0.5)
    run.finish()
    with gzip.open(record, "rt") as f:
        lines = [json.loads(x) for x in f]
    assert [x["step"] for x in lines[1:]] == list(range(40))
    assert lines[1 + 7]["g_loss"] == "NaN"  # any JSON reader takes the file
    assert series(api, run.id, "d_loss")["steps"] == list(range(40))


def test_records_exported_from_other_tools_are_read(sqlite_only, api, tmp_path):
    """A W&B history export: `_step`, `_timestamp`, media and text values, NaN as a string."""
    path = tmp_path / "wandb-history.jsonl"
    rows = [{"_step": s, "_timestamp": 1.7e9 + s, "_runtime": s * 0.1,
             "loss_D": 1.0 if s != 50 else "NaN", "note": "warm-up" if s < 5 else None,
             "samples": {"_type": "image-file", "path": "media/x.png"}} for s in range(120)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    done = ganwatch("replay", path, "--server", sqlite_only.url,
                    "--rules", '{"non_finite": {"clear_for": 10}}')
    run_id = replayed_run_id(done)
    # 120 media values and 5 notes: not series, and said so
    assert "125 values that are not numbers were left out" in done.stdout
    stored = series(api, run_id, "loss_D")
    assert stored["steps"] == list(range(120)) and stored["values"][50] == "NaN"
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["name"] == "wandb-history" and "samples" not in run["series_keys"]
    alerts = api.get("/api/v1/alerts", params={"run_id": run_id}).json()["data"]
    assert [(a["rule"], a["status"]) for a in alerts] == [("non_finite", "resolved")]
    assert api.get(f"/api/v1/runs/{run_id}/rules").json()["overrides"] == {
        "non_finite": {"clear_for": 10}}


@pytest.mark.parametrize(("content", "says"), [
    ('{"step": 0, "d_loss": 1}\nnot json\n{"step": 2, "d_loss": 1}\n', "line 2: not JSON"),
    ('{"step": 0, "d_loss": 1}\n{"step": 1, "d_lo\n{"step": 2, "d_loss": 1}\n',
     "line 2: not JSON"),
    ('{"step": 0, "d_loss": 1}\n[1, 2]\n', "line 2: expected a JSON object"),
    ('{"d_loss": 1}\n', "line 1: no step"),
    ('{"step": -3, "d_loss": 1}\n', "line 1: the step must be a whole number"),
    ('{"step": 0}\n{"ganwatch_record": 1}\n', "line 2: the ganwatch_record header must be"),
    ("", "holds no steps"),
])
def test_bad_records_are_one_line_errors_and_create_no_run(sqlite_only, api, tmp_path,
                                                            content, says):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    before = api.get("/api/v1/runs").json()["count"]
    done = ganwatch("replay", path, "--server", sqlite_only.url)
    assert done.returncode == 2
    assert done.stderr.startswith("ganwatch: error:") and says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert api.get("/api/v1/runs").json()["count"] == before


def test_a_record_cut_short_replays_every_whole_line_and_says_the_last_was_cut(
        sqlite_only, api, tmp_path):
    # a d-wins run killed (OOM, SIGKILL, preemption) while it wrote its 202nd line
    with gzip.open(RECORDS / "d-wins.jsonl.gz", "rt") as f:
        whole = f.read()
    steps = [json.loads(line)["step"] for line in whole.splitlines() if '"step"' in line[:12]]
    path = tmp_path / "killed.jsonl"
    path.write_text(whole + f'{{"step": {max(steps) + 1}, "d_loss": 0.00')
    done = ganwatch("replay", path, "--server", sqlite_only.url)
    run_id = replayed_run_id(done)
    assert f"killed.jsonl line {len(whole.splitlines()) + 1}, the last, was cut short" \
        in done.stdout
    assert f"replayed {len(steps)} steps" in done.stdout
    alerts = api.get("/api/v1/alerts", params={"run_id": run_id, "limit": 1000}).json()["data"]
    assert {a["rule"] for a in alerts if a["fired_step"] is not None} == EXPECTED["d-wins"]
    assert api.get(f"/api/v1/runs/{run_id}").json()["last_step"] == max(steps)


@pytest.mark.parametrize(("argv", "says"), [
    (["replay", "/no/such/file.jsonl"], "no record file or log"),
    (["replay", "RECORD", "--rules", "{oops"], "--rules is not JSON"),
    (["replay", "RECORD", "--rules", "[]"], "--rules must be a JSON object"),
])
def test_bad_replay_arguments_are_one_line_errors(tmp_path, argv, says):
    record = tmp_path / "r.jsonl"
    record.write_text('{"step": 0, "d_loss": 1}\n')
    done = ganwatch(*[str(record) if a == "RECORD" else a for a in argv])
    assert done.returncode == 2 and says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_rules_the_server_refuses_fail_the_replay_with_its_detail(sqlite_only, tmp_path):
    record = tmp_path / "r.jsonl"
    record.write_text('{"step": 0, "d_loss": 1}\n')
    done = ganwatch("replay", record, "--server", sqlite_only.url,
                    "--rules", '{"no_such_rule": {}}')
    assert done.returncode == 1
    assert "did not create the run" in done.stderr and "unknown rule" in done.stderr


def test_replay_says_which_rules_could_not_watch_and_reads_a_trainers_names(sqlite_only,
                                                                            tmp_path):
    blind = tmp_path / "unknown.jsonl"
    blind.write_text("".join(json.dumps({"step": i, "acc": 0.5, "lr": 1e-4}) + "\n"
                             for i in range(50)))
    done = ganwatch("replay", blind, "--server", sqlite_only.url)
    assert done.returncode == 0, done.stderr
    assert "d_loss_zero needs d_loss (or an alias)" in done.stdout
    assert "the rules cannot see this run" in done.stdout
    named = tmp_path / "dcgan-example.jsonl"
    named.write_text("".join(json.dumps({"step": i, "Loss_D": 1e-4, "Loss_G": 9.0,
                                         "D(x)": 0.999, "D(G(z))": 0.001}) + "\n"
                             for i in range(400)))
    done = ganwatch("replay", named, "--server", sqlite_only.url)
    assert done.returncode == 0, done.stderr
    assert "reading Loss_D as d_loss" in done.stdout and "(d_loss_zero)" in done.stdout
    assert "cannot see this run" not in done.stdout
