"""``ganwatch import FILE|DIR``: another tool's training log becomes a run on a real server,
its points in step order under their own names, and the rules judge it as they judge a live
run. The reference trainer's recorded runs, written out as each tool writes its log, import
to the record's own verdict, and ``ganwatch replay`` of the same log gives the same one."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, series

RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "records"
D_WINS = {"d_loss_zero", "d_overpowering", "vanishing_g_gradient"}  # as tests/api/test_replay.py


def ganwatch(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganwatch", *map(str, argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def run_id_of(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "/runs/" in x)
    return line.rsplit("/runs/", 1)[1].strip()


@pytest.fixture
def sqlite_only(server):
    if server.database_url:
        pytest.skip("the imported logs are checked once, on the SQLite server")
    return server


def record_steps(name: str) -> dict[int, dict[str, float]]:
    """A recorded preset's values by step (its lines of one step merged)."""
    by_step: dict[int, dict[str, float]] = {}
    with gzip.open(RECORDS / f"{name}.jsonl.gz", "rt") as f:
        for line in f:
            obj = json.loads(line)
            if "step" in obj:
                by_step.setdefault(obj["step"], {}).update(
                    {k: v for k, v in obj.items() if k not in ("step", "wall_time")})
    return dict(sorted(by_step.items()))


def _csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_tensorboard(steps: dict, out: Path) -> Path:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run = out / "tb_logs" / "d-wins"
    run.mkdir(parents=True)
    writer = EventFileWriter(str(run))
    for step, values in steps.items():
        writer.add_event(Event(wall_time=1.7e9 + step, step=step, summary=Summary(value=[
            Summary.Value(tag=k, simple_value=v) for k, v in values.items()])))
    writer.close()
    return out / "tb_logs"  # the directory: its event files are found


def write_lightning(steps: dict, out: Path) -> Path:
    keys = sorted({k for values in steps.values() for k in values})
    rows = []
    for step, values in steps.items():  # sparse, as Lightning writes: losses, then the rest
        rows.append([step, 0] + [values.get(k, "") if "loss" in k else "" for k in keys])
        rows.append([step, 0] + ["" if "loss" in k else values.get(k, "") for k in keys])
    return _csv(out / "lightning_logs" / "version_0" / "metrics.csv", ["step", "epoch", *keys],
                rows)


def write_stylegan(steps: dict, out: Path) -> Path:
    path = out / "00000-stylegan2" / "stats.jsonl"
    path.parent.mkdir(parents=True)
    assert list(steps) == list(range(len(steps)))  # the line index is the step
    path.write_text("".join(json.dumps({k: {"num": 1, "mean": v, "std": 0.0}
                                        for k, v in values.items()}) + "\n"
                            for values in steps.values()))
    return path


def write_wandb_csv(steps: dict, out: Path) -> Path:
    keys = sorted({k for values in steps.values() for k in values})
    return _csv(out / "wandb-history.csv", ["", "_step", "_runtime", *keys],
                [[i, step, step * 0.1] + [values.get(k, "") for k in keys]
                 for i, (step, values) in enumerate(steps.items())])


def write_mlflow_csv(steps: dict, out: Path) -> Path:
    return _csv(out / "metric-history.csv", ["key", "value", "step", "timestamp"],
                [[k, v, step, 1_700_000_000_000 + step]
                 for step, values in steps.items() for k, v in values.items()])


def mlflow_keys(keys) -> set[str]:
    """MLflow's file store cannot hold both grad_norm/G (a file) and grad_norm/G/main.0 (a file
    in a directory of that name): an MLflow run logs the totals only."""
    return {k for k in keys if k.count("/") < 2}


def write_mlruns(steps: dict, out: Path) -> Path:
    run = out / "mlruns" / "0" / "0123abcd"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: 0123abcd\n")
    lines: dict[str, list[str]] = {}
    for step, values in steps.items():
        for k, v in values.items():
            if k not in mlflow_keys([k]):
                continue
            lines.setdefault(k, []).append(f"{1_700_000_000_000 + step} {v} {step}\n")
    for key, text in lines.items():
        file = run / "metrics" / key
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("".join(text))
    return out / "mlruns"


WRITERS = {"tensorboard": write_tensorboard, "lightning": write_lightning,
           "stylegan": write_stylegan, "wandb-csv": write_wandb_csv,
           "mlflow-csv": write_mlflow_csv, "mlruns": write_mlruns}


def fired(api, run_id: str) -> set[str]:
    alerts = api.get("/api/v1/alerts", params={"run_id": run_id, "limit": 1000}).json()["data"]
    return {a["rule"] for a in alerts if a["fired_step"] is not None}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_failing_log_from_each_tool_imports_to_the_records_verdict(sqlite_only, api, tmp_path,
                                                                     fmt):
    """The d-wins preset (D's loss near 0 under the name d_loss from the first steps) in each
    tool's format: the points arrive in step order under their names, and the alerts are the
    record's, printed; replaying the same log gives the same run and verdict."""
    steps = record_steps("d-wins")
    path = WRITERS[fmt](steps, tmp_path)
    done = ganwatch("import", path, "--server", sqlite_only.url, "--name", f"import-{fmt}")
    run_id = run_id_of(done)
    assert done.stdout.startswith(f"ganwatch: imported {len(steps)} steps")
    stored = series(api, run_id, "d_loss")
    assert stored["steps"] == list(steps)
    assert stored["values"] == pytest.approx([v["d_loss"] for v in steps.values()], rel=1e-6)
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "finished" and run["name"] == f"import-{fmt}"
    assert run["last_step"] == max(steps)
    logged = mlflow_keys(steps[5]) if fmt == "mlruns" else set(steps[5])
    assert logged <= set(run["series_keys"])  # every name as logged
    verdict = fired(api, run_id)
    assert verdict == D_WINS, done.stdout
    for rule in verdict:
        assert f"({rule})" in done.stdout

    again = ganwatch("replay", path, "--server", sqlite_only.url)
    replayed = run_id_of(again)
    assert again.stdout.startswith(f"ganwatch: replayed {len(steps)} steps")
    assert fired(api, replayed) == verdict
    assert series(api, replayed, "d_loss")["steps"] == list(steps)


def test_foreign_names_are_kept_and_read_by_the_servers_vocabulary(sqlite_only, api, tmp_path):
    """The d-wins run as StyleGAN names its losses: stored under those names, and the server
    reads Loss/D/loss as D's loss (the run's verdict says so)."""
    names = {"d_loss": "Loss/D/loss", "g_loss": "Loss/G/loss"}
    steps = {step: {names.get(k, k): v for k, v in values.items()}
             for step, values in record_steps("d-wins").items()}
    done = ganwatch("import", write_stylegan(steps, tmp_path), "--server", sqlite_only.url)
    run_id = run_id_of(done)
    assert series(api, run_id, "Loss/D/loss")["steps"] == list(steps)
    assert "d_loss" not in api.get(f"/api/v1/runs/{run_id}").json()["series_keys"]
    assert "d_loss_zero" in fired(api, run_id)
    assert "reading Loss/D/loss as d_loss" in done.stdout, done.stdout


def test_a_healthy_lightning_log_imports_quietly(sqlite_only, api, tmp_path):
    steps = record_steps("healthy-digits")
    path = write_lightning(steps, tmp_path)
    done = ganwatch("import", path.parent, "--server", sqlite_only.url)
    run_id = run_id_of(done)
    assert fired(api, run_id) == set()
    assert "no alerts: no rule found a failure sign" in done.stdout
    assert api.get(f"/api/v1/runs/{run_id}").json()["name"] == "version_0"
    assert series(api, run_id, "grad_norm/G")["steps"] == list(steps)


def test_non_finite_values_are_data(sqlite_only, api, tmp_path):
    path = _csv(tmp_path / "metrics.csv", ["step", "d_loss", "g_loss"],
                [[s, "nan" if s == 40 else 0.7, "inf" if s == 41 else ""] for s in range(60)])
    done = ganwatch("import", path, "--server", sqlite_only.url)
    run_id = run_id_of(done)
    d_loss = series(api, run_id, "d_loss")
    assert d_loss["steps"] == list(range(60)) and d_loss["values"][40] == "NaN"
    g_loss = series(api, run_id, "g_loss")  # empty cells are no points, not zeros
    assert g_loss["steps"] == [41] and g_loss["values"] == ["Infinity"]
    assert "non_finite" in fired(api, run_id)


def test_import_arguments_are_one_line_errors(sqlite_only, api, tmp_path):
    before = api.get("/api/v1/runs").json()["count"]
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\n")
    for argv, says in ((["import", unknown], "is not a log ganwatch can read"),
                       (["import", tmp_path / "none"], "no file or directory at"),
                       (["import", unknown, "--rules", "[]"], "--rules must be a JSON object"),
                       (["import"], "the following arguments are required: path")):
        done = ganwatch(*argv, "--server", sqlite_only.url)
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert done.stderr.startswith("ganwatch: error:")
        assert len(done.stderr.strip().splitlines()) == 1
    assert api.get("/api/v1/runs").json()["count"] == before
