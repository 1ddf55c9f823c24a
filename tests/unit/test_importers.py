"""Other tools' training logs, read without a server (trainer_client/importers.py): each
format's small fixture gives exactly its steps, in order, with its own names; NaN and the
infinities are values, empty cells missing ones; detect() finds the format of a file or a
directory and names the known formats when it cannot; bad logs are one-line CLI errors."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from ganwatch.cli import main
from trainer_client import importers
from trainer_client.importers import LogError, Row, detect, read

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
NAN = object()  # stands for a NaN in an expected row (NaN != NaN)


def rows_of(path: Path) -> tuple[str, list[Row]]:
    source = detect(path)
    return source.format, read(source)


def plain(rows: list[Row]) -> list[tuple[int, dict]]:
    return [(r.step, {k: NAN if math.isnan(v) else v for k, v in r.values.items()})
            for r in rows]


def test_lightning_metrics_csv_sparse_rows_are_merged_by_step():
    fmt, rows = rows_of(FIXTURES / "lightning" / "version_0" / "metrics.csv")
    assert fmt == "lightning"
    assert plain(rows) == [
        (0, {"d_loss_step": 1.25, "epoch": 0.0, "g_loss": 0.75}),
        (1, {"d_loss_step": 1.0, "epoch": 0.0, "g_loss": 0.5}),
        # the epoch-end row of step 2 joins the step's training row; "nan"/"inf" are values
        (2, {"d_loss_step": NAN, "epoch": 0.0, "g_loss": math.inf, "d_loss_epoch": 1.1}),
        (3, {"d_loss_step": 0.5, "epoch": 1.0}),  # empty cells: no g_loss, not 0
    ]
    assert all(r.wall_time is None for r in rows)
    assert detect(FIXTURES / "lightning").name == "version_0"


def test_stylegan_stats_jsonl_means_by_tick():
    fmt, rows = rows_of(FIXTURES / "stylegan" / "00003-stylegan2-ring8" / "stats.jsonl")
    assert fmt == "stylegan"
    # the step is the line's index, increasing though the resumed run's tick restarts at 0
    assert [r.step for r in rows] == [0, 1, 2]
    assert plain(rows)[0][1] == {"Progress/tick": 0.0, "Progress/kimg": 0.0,
                                 "Loss/D/loss": 1.5, "Loss/G/loss": 0.75}  # num 0: missing
    assert plain(rows)[1][1]["Loss/D/loss"] is NAN  # counted, and NaN: a value
    assert plain(rows)[1][1]["Loss/r1_penalty"] == 0.25
    assert [r.values["Progress/kimg"] for r in rows] == [0.0, 4.0, 8.0]
    assert [r.wall_time for r in rows] == [1700000000.5, 1700000060.0, 1700000120.0]
    assert "timestamp" not in rows[0].values
    assert detect(FIXTURES / "stylegan").name == "00003-stylegan2-ring8"


def test_wandb_history_csv():
    fmt, rows = rows_of(FIXTURES / "wandb-history.csv")
    assert fmt == "wandb-csv"
    assert plain(rows) == [
        (0, {"loss_D": 1.5, "loss_G": 0.5}),
        (1, {"loss_G": 0.25}),
        (2, {"loss_D": NAN, "loss_G": -math.inf}),
        (3, {"loss_D": 1.0, "loss_G": 0.125}),
    ]
    assert [r.wall_time for r in rows] == [1.7e9, 1.7e9 + 1, 1.7e9 + 2, 1.7e9 + 3]
    assert [r.skipped for r in rows] == [1, 0, 0, 1]  # the media cells


def test_mlflow_metric_history_csv():
    fmt, rows = rows_of(FIXTURES / "mlflow-history.csv")
    assert fmt == "mlflow-csv"
    assert plain(rows) == [(0, {"errD": 1.5, "errG": 0.5}), (1, {"errD": 1.25}),
                           (2, {"errD": NAN, "errG": math.inf})]
    assert rows[1].wall_time == 1700000001.0  # ms to s


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "mlflow-history.csv").read_bytes())
    assert rows_of(path)[0] == "mlflow-csv"
    assert [r.step for r in read(detect(path))] == [0, 1, 2]


@pytest.mark.parametrize("where", ["mlruns", "mlruns/1", "mlruns/1/5f2c0a1b",
                                   "mlruns/1/5f2c0a1b/metrics"])
def test_mlruns_run_directory(where):
    source = detect(FIXTURES / where)
    assert source.format == "mlruns" and source.name == "wgan-mnist"  # tags/mlflow.runName
    assert plain(read(source)) == [(0, {"Loss/G": 0.5, "loss_D": 1.5}), (1, {"loss_D": 1.0}),
                                   (2, {"Loss/G": -math.inf, "loss_D": NAN})]


def _write_events(directory: Path, points: list[tuple[int, str, float]],
                  wall: float = 1.7e9) -> Path:
    """An event file written by TensorBoard's own writer: scalars as simple_value summaries
    (what torch's SummaryWriter writes)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(directory))
    for step, tag, value in points:
        writer.add_event(Event(wall_time=wall + step, step=step, summary=Summary(
            value=[Summary.Value(tag=tag, simple_value=value)])))
    writer.close()
    return Path(writer.get_logdir())


def test_tensorboard_event_files(tmp_path):
    run = tmp_path / "logs" / "dcgan"
    run.mkdir(parents=True)
    points = [(s, tag, v) for s in range(4) for tag, v in
              (("Loss/D", 1.0 / (s + 1)), ("Loss/G", math.nan if s == 2 else 0.5))]
    _write_events(run, points[::-1])  # written out of order: read in step order
    import tensorboard.summary as summary

    writer = summary.Writer(summary.DirectoryOutput(str(run)))  # TF2 scalars: tensors
    for step in (1, 3):
        writer.add_scalar("D(x)", 0.25 * step, step=step)
    writer.close()

    for path in (tmp_path / "logs", run):
        source = detect(path)
        assert source.format == "tensorboard" and source.name == "dcgan"
        rows = read(source)
        assert [r.step for r in rows] == [0, 1, 2, 3]
        assert plain(rows)[2] == (2, {"Loss/D": pytest.approx(1 / 3), "Loss/G": NAN})
        assert rows[1].values["D(x)"] == 0.25 and rows[3].values["D(x)"] == 0.75
        assert "D(x)" not in rows[0].values
        assert rows[0].wall_time == 1.7e9
    one_file = next(run.glob("events.out.tfevents.*"))
    assert detect(one_file).format == "tensorboard"


def test_a_restarted_tensorboard_run_keeps_the_later_values(tmp_path):
    """A run restarted from its step-3 checkpoint writes a second event file beside the first:
    steps 3 and 4 are read once, with the restarted run's values."""
    for started, first, value in ((1700000000, 0, 1.0), (1700000100, 3, 2.0)):
        written = tmp_path / "writing"
        _write_events(written, [(s, "d_loss", value) for s in range(first, first + 5)],
                      wall=started)
        # named as the writer names them, by the time it started (not this test's clock)
        next(written.glob("events.*")).rename(tmp_path / f"events.out.tfevents.{started}.host")
        written.rmdir()
    rows = read(detect(tmp_path))
    assert [(r.step, r.values["d_loss"]) for r in rows] == [
        (0, 1.0), (1, 1.0), (2, 1.0), (3, 2.0), (4, 2.0), (5, 2.0), (6, 2.0), (7, 2.0)]
    assert rows[3].wall_time == 1700000103  # the restarted run's step, not the first's


def test_tensorboard_missing_is_an_install_hint(tmp_path, monkeypatch):
    run = tmp_path / "tb"
    run.mkdir()
    _write_events(run, [(0, "d_loss", 1.0)])
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard fails
    with pytest.raises(LogError, match=r"pip install 'ganwatch\[import\]'"):
        read(detect(run))


def test_a_damaged_event_file_keeps_what_is_intact(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    good = _write_events(run, [(s, "d_loss", 1.0) for s in range(3)])
    event_file = next(good.glob("events.out.tfevents.*"))
    event_file.write_bytes(event_file.read_bytes()[:-7])  # the last record cut short
    assert [r.step for r in read(detect(run))] == [0, 1]  # as TensorBoard shows it
    garbage = tmp_path / "events.out.tfevents.1.host"
    garbage.write_bytes(b"\x00not a record" * 10)
    assert read(detect(garbage)) == []
    assert main(["import", str(garbage), "--server", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err == f"ganwatch: error: {garbage} holds no scalars\n"


def test_unknown_files_and_directories_name_the_known_formats(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    table = tmp_path / "table.csv"
    table.write_text("a,b\n1,2\n")
    for path in (text, table, tmp_path / "empty"):
        path.mkdir() if path.suffix == "" else None
        with pytest.raises(LogError) as caught:
            detect(path)
        for fmt in ("TensorBoard", "Lightning", "StyleGAN", "W&B", "MLflow"):
            assert fmt in str(caught.value)
    with pytest.raises(LogError, match="no file or directory"):
        detect(tmp_path / "missing")


def test_a_directory_of_several_logs_asks_for_one(tmp_path):
    for version in ("version_0", "version_1"):
        (tmp_path / version).mkdir()
        _write_events(tmp_path / version, [(0, "d_loss", 1.0)])
    with pytest.raises(LogError, match=r"holds 2 logs \(version_0 \(tensorboard\), "
                                       r"version_1 \(tensorboard\)\): import one"):
        detect(tmp_path)
    assert detect(tmp_path / "version_1").format == "tensorboard"


@pytest.mark.parametrize(("name", "content", "says"), [
    ("metrics.csv", "step,d_loss\n0,1\nx,2\n", "metrics.csv line 3: the step must be"),
    ("metrics.csv", "step,d_loss\n0,1\n,2\n", "metrics.csv line 3: no step"),
    ("metrics.csv", "step,d_loss\n-1,1\n", "the step must be a whole number >= 0"),
    ("metrics.csv", "step,d_loss\n0,1,2\n", "line 2: 3 cells, the header has 2"),
    ("h.csv", "key,value,step\nerrD,high,0\n", "h.csv line 2: the value 'high' is not"),
    ("h.csv", "key,value,step,run_id\nerrD,1,0,a\nerrD,1,0,b\n", "holds 2 runs"),
    ("stats.jsonl", '{"Progress/tick": {"num": 1, "mean": 0}}\n[1]\n',
     "stats.jsonl line 2: expected a JSON object"),
    ("stats.jsonl", '{"Progress/tick": {"num": 1, "mean": 0}}\n{oops\n', "line 2: not JSON"),
])
def test_bad_logs_are_log_errors_naming_the_line(tmp_path, name, content, says):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(LogError) as caught:
        read(detect(path))
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_mlruns_line_names_its_metric(tmp_path):
    metrics = tmp_path / "run" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "d_loss").write_text("1700000000000 1.0 0\n1700000000000 one 1\n")
    with pytest.raises(LogError, match="metrics/d_loss line 2"):
        read(detect(tmp_path / "run"))


def test_records_keep_their_own_reader():
    # ganwatch records and W&B JSON Lines go through trainer_client.record, as replay did
    record = Path(__file__).resolve().parents[1] / "fixtures" / "records" / "d-wins.jsonl.gz"
    assert detect(record).format == "record"
    assert importers.RECORD_FORMATS == ("record", "wandb-jsonl")


def test_wandb_json_lines_are_detected(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"_step": 0, "loss_D": 1}\n')
    assert detect(path).format == "wandb-jsonl"


@pytest.mark.parametrize("command", ["import", "replay"])
def test_bad_logs_are_one_line_cli_errors_before_any_server(tmp_path, capsys, command):
    """No server is there: the log is read whole, and refused (2), before anything is sent
    (a send to the absent server would fail with 1)."""
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\n")
    bad = tmp_path / "metrics.csv"
    bad.write_text("step,d_loss\n0,1\nzero,1\n")
    empty = tmp_path / "e" / "metrics.csv"
    empty.parent.mkdir()
    empty.write_text("step,d_loss\n")
    for path, says in ((unknown, "is not a log ganwatch can read; it reads"),
                       (bad, "metrics.csv line 3: the step must be"),
                       (empty, "holds no scalars")):
        assert main([command, str(path), "--server", "http://127.0.0.1:9"]) == 2
        out, err = capsys.readouterr()
        assert err.startswith("ganwatch: error: ") and err.count("\n") == 1, err
        assert says in err and "Traceback" not in err


def test_import_of_nothing_is_a_one_line_error(tmp_path, capsys):
    assert main(["import", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"ganwatch: error: no file or directory at {tmp_path / 'missing'}\n"
