"""Other tools' training logs, read as a run's scalars in step order: what ``ganwatch import``
and ``ganwatch replay`` send to a server.

Each reader takes a path and yields :class:`Row` s (step, {key: value}, wall time), one per
step, in increasing step order; :func:`detect` says which reader a file or directory needs.
The logged names are kept as they are (the server maps foreign names onto the roles its rules
read). NaN and the infinities are data, in any spelling Python's ``float`` takes ("nan",
"NaN", "inf", "Infinity", ...); an empty cell or a missing key is a missing value. Values that
are not numbers (text, media) are counted in ``Row.skipped`` and left out.

Formats:

``tensorboard``  event files (``events.out.tfevents.*``), one file or the directory that holds
                 them, read with TensorBoard's own reader (``pip install 'ganwatch[import]'``);
                 scalars only (``simple_value`` and TF2 scalar tensors), tags as names
``lightning``    Lightning CSVLogger ``metrics.csv``: ``step``, ``epoch`` and metric columns,
                 sparse rows; rows of the same step are merged
``stylegan``     StyleGAN2/3 ``stats.jsonl``: each key's ``mean`` is its value (a statistic
                 with ``num`` 0 is missing, not NaN); the step is the line's index (the tick:
                 0, 1, ...), ``Progress/kimg`` a series
``wandb-csv``    a W&B run history as CSV (``run.history().to_csv()``): ``_step`` and metric
                 columns; other columns starting with ``_`` are W&B's own, ``_timestamp`` the
                 wall time
``mlflow-csv``   MLflow metric history as CSV: columns ``key``, ``value``, ``step`` and
                 optionally ``timestamp`` (ms), one point per row, one run
``mlruns``       an MLflow run's ``metrics`` directory (``mlruns/<exp>/<run>``, the run's
                 ``metrics/`` or a directory holding one run): one file per key, lines
                 ``timestamp value step``

and, read by :mod:`trainer_client.record` (``ganwatch replay`` as before), ``record``: a
ganwatch record, and ``wandb-jsonl``: a W&B history as JSON Lines (``_step`` per line).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

INSTALL_HINT = "pip install 'ganwatch[import]'"

FORMATS: dict[str, str] = {
    "record": "a ganwatch record (JSON Lines, one step per line)",
    "wandb-jsonl": "a W&B run history (JSON Lines with _step)",
    "tensorboard": "TensorBoard event files (events.out.tfevents.*)",
    "lightning": "a Lightning CSVLogger metrics.csv",
    "stylegan": "a StyleGAN2/3 stats.jsonl",
    "wandb-csv": "a W&B run history CSV (_step and metric columns)",
    "mlflow-csv": "an MLflow metric history CSV (key, value, step, timestamp)",
    "mlruns": "an MLflow run's metrics directory (mlruns/<experiment>/<run>)",
}
RECORD_FORMATS = ("record", "wandb-jsonl")  # read by trainer_client.record, as replay always did


def known_formats() -> str:
    return "; ".join(FORMATS.values())


class LogError(ValueError):
    """A log that cannot be read: the message names the file (and line) and what is wrong."""


class Row(NamedTuple):
    step: int
    values: dict[str, float]
    wall_time: float | None = None
    skipped: int = 0  # values of this step that are not numbers, left out


class Source(NamedTuple):
    format: str  # a key of FORMATS
    path: Path  # what the reader reads (a directory's one log)
    name: str  # the run's default name


# ---- shared pieces ----------------------------------------------------------------------

class _Steps:
    """Collects (step, key, value) points in any order and gives them back as one row per step,
    steps increasing; a key given twice at a step (a restarted run's steps logged again) keeps
    the later value, and the step the later wall time."""

    def __init__(self) -> None:
        self._rows: dict[int, dict[str, float]] = {}
        self._wall: dict[int, float] = {}
        self._skipped: dict[int, int] = {}

    def add(self, step: int, key: str, value: float, wall_time: float | None = None) -> None:
        self._rows.setdefault(step, {})[key] = value
        self.stamp(step, wall_time)

    def stamp(self, step: int, wall_time: float | None) -> None:
        self._rows.setdefault(step, {})
        if wall_time is not None and math.isfinite(wall_time):
            self._wall[step] = wall_time  # the latest, with the latest values

    def skip(self, step: int, count: int = 1) -> None:
        self._rows.setdefault(step, {})
        self._skipped[step] = self._skipped.get(step, 0) + count

    def rows(self) -> Iterator[Row]:
        for step in sorted(self._rows):
            yield Row(step, self._rows[step], self._wall.get(step), self._skipped.get(step, 0))


def _number(text: str) -> float | None:
    """A cell as a float ("nan", "inf", "Infinity" included), or None when it is not one."""
    try:
        return float(text)
    except ValueError:
        return None


def _step(value, where: str) -> int:
    """A step: a whole number >= 0 (``12``, ``12.0``); else a LogError naming where."""
    x = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if isinstance(value, str):
        x = _number(value.strip())
    if x is None or not math.isfinite(x) or x < 0 or not float(x).is_integer():
        raise LogError(f"{where}: the step must be a whole number >= 0, not "
                       f"{json.dumps(value)[:40]}")
    return int(x)


def _open_text(path: Path):
    """Text I/O on a log (gzip-compressed when its name ends in .gz); a byte-order mark, which
    spreadsheet tools write, is not part of the first column's name."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: cell}) for each data row of a CSV file with a header."""
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) > len(header):
                raise LogError(f"{path.name} line {reader.line_num}: {len(row)} cells, the "
                               f"header has {len(header)}")
            yield reader.line_num, dict(zip(header, (c.strip() for c in row)))


def _csv_header(path: Path) -> list[str]:
    with _open_text(path) as f:
        return [h.strip() for h in next(csv.reader(f), [])]


def _wide_csv(path: Path, step_column: str, *, wall_column: str | None = None,
              scale: float = 1.0, own: Iterable[str] = ()) -> Iterator[Row]:
    """A CSV with a step column and one column per metric: an empty cell is no value."""
    own = set(own)
    steps = _Steps()
    for line, cells in _csv_rows(path):
        where = f"{path.name} line {line}"
        raw = cells.get(step_column, "")
        if raw == "":
            raise LogError(f"{where}: no {step_column}")
        step = _step(raw, where)
        if wall_column and cells.get(wall_column):
            wall = _number(cells[wall_column])
            steps.stamp(step, None if wall is None else wall * scale)
        for key, cell in cells.items():
            if key == step_column or key in own or not key or cell == "":
                continue
            value = _number(cell)
            if value is None:
                steps.skip(step)
            else:
                steps.add(step, key, value)
    yield from steps.rows()


# ---- the readers ------------------------------------------------------------------------

def read_lightning(path: Path) -> Iterator[Row]:
    """Lightning CSVLogger metrics.csv: ``step`` (and ``epoch``, kept as a series) and sparse
    metric columns; the rows of one step are merged."""
    yield from _wide_csv(path, "step")


def read_wandb_csv(path: Path) -> Iterator[Row]:
    """A W&B history CSV: ``_step``, ``_timestamp`` (the wall time, s); other ``_`` columns
    and an unnamed index column (pandas') are W&B's own, not series."""
    header = _csv_header(path)
    own = [h for h in header if h.startswith("_") or not h]
    yield from _wide_csv(path, "_step", wall_column="_timestamp", own=own)


def read_mlflow_csv(path: Path) -> Iterator[Row]:
    """MLflow metric history: one point per row, columns key, value, step (timestamp in ms)."""
    steps = _Steps()
    runs: set[str] = set()
    for line, cells in _csv_rows(path):
        where = f"{path.name} line {line}"
        key = cells.get("key", "")
        if not key:
            raise LogError(f"{where}: no key")
        if cells.get("run_id"):
            runs.add(cells["run_id"])
        step = _step(cells.get("step", ""), where)
        value = _number(cells.get("value", ""))
        if value is None:
            raise LogError(f"{where}: the value {cells.get('value', '')[:40]!r} is not a number")
        stamp = _number(cells.get("timestamp") or "")
        steps.add(step, key, value, None if stamp is None else stamp / 1000.0)
    if len(runs) > 1:
        raise LogError(f"{path.name} holds {len(runs)} runs' metrics (run_id "
                       f"{', '.join(sorted(runs)[:3])}...): export one run")
    yield from steps.rows()


def read_mlruns(path: Path) -> Iterator[Row]:
    """An MLflow run's ``metrics`` directory: a file per key (a key with ``/`` in it is a
    nested path), lines ``timestamp value step``; a line without a step (MLflow before 1.0)
    takes its index in the file."""
    metrics = path if path.name == "metrics" else path / "metrics"
    steps = _Steps()
    for file in sorted(p for p in metrics.rglob("*") if p.is_file()):
        key = file.relative_to(metrics).as_posix()
        with open(file, encoding="utf-8") as f:
            for number, text in enumerate(f, 1):
                parts = text.split()
                if not parts:
                    continue
                where = f"metrics/{key} line {number}"
                if len(parts) not in (2, 3):
                    raise LogError(f"{where}: expected 'timestamp value step'")
                stamp, value = _number(parts[0]), _number(parts[1])
                if stamp is None or value is None:
                    raise LogError(f"{where}: expected 'timestamp value step' as numbers")
                step = _step(parts[2], where) if len(parts) == 3 else number - 1
                steps.add(step, key, value, stamp / 1000.0)
    yield from steps.rows()


def _stylegan_value(stat):
    """A stats.jsonl statistic's value: its mean, None when it counted nothing; the string
    "skip" for what is not a statistic."""
    if isinstance(stat, dict) and "mean" in stat:
        if stat.get("num") == 0:
            return None
        mean = stat["mean"]
        if isinstance(mean, str):
            return _number(mean) if _number(mean) is not None else "skip"
        if isinstance(mean, (int, float)) and not isinstance(mean, bool):
            return float(mean)
        return None if mean is None else "skip"
    return "skip"


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    with _open_text(path) as f:
        for number, text in enumerate(f, 1):
            text = text.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise LogError(f"{path.name} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise LogError(f"{path.name} line {number}: expected a JSON object")
            yield number, obj


def read_stylegan(path: Path) -> Iterator[Row]:
    """StyleGAN2/3 stats.jsonl: one line per tick; each statistic's mean is its value. The
    step is the line's index (0, 1, ...: the tick, counted from the file's start, so it
    increases even across a resumed run, whose ticks restart at 0). Not the images shown
    (``Progress/kimg`` x 1000): the rules' windows count steps, and ticks thousands of images
    apart would leave one point in each. ``Progress/kimg`` stays a series of its own."""
    for index, (_, obj) in enumerate(_json_lines(path)):
        step = index
        values, skipped = {}, 0
        for key, stat in obj.items():
            if key == "timestamp":
                continue
            value = _stylegan_value(stat)
            if value == "skip":
                skipped += 1
            elif value is not None:
                values[key] = value
        stamp = obj.get("timestamp")
        wall = float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) \
            and math.isfinite(stamp) else None
        yield Row(step, values, wall, skipped)


def read_tensorboard(path: Path) -> Iterator[Row]:
    """Scalars of TensorBoard event files (one file, or all of a directory's) by TensorBoard's
    own reader: ``simple_value`` summaries and TF2 scalar tensors; each tag is a key. Files
    are read in their names' (creation) order: a step logged again by a restarted run keeps
    its later value (TensorBoard's own purge after a logged restart applies too)."""
    try:
        from tensorboard.backend.event_processing import event_accumulator as ea
        from tensorboard.util import tensor_util
    except ImportError:
        raise LogError(f"reading TensorBoard event files needs tensorboard: "
                       f"{INSTALL_HINT}") from None
    accumulator = ea.EventAccumulator(str(path), size_guidance={
        ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 1, ea.AUDIO: 1, ea.HISTOGRAMS: 1,
        ea.COMPRESSED_HISTOGRAMS: 1})
    try:
        accumulator.Reload()
    except Exception as exc:  # a damaged file: the reader's own error, in one line
        raise LogError(f"{path.name}: not a readable TensorBoard event file "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    tags = accumulator.Tags()
    steps = _Steps()
    for tag in tags.get(ea.SCALARS, []):
        for event in accumulator.Scalars(tag):
            steps.add(int(event.step), tag, float(event.value), event.wall_time)
    for tag in tags.get(ea.TENSORS, []):
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        for event in accumulator.Tensors(tag):
            array = tensor_util.make_ndarray(event.tensor_proto)
            if array.size == 1:
                steps.add(int(event.step), tag, float(array.reshape(-1)[0]), event.wall_time)
    yield from steps.rows()


READERS = {
    "tensorboard": read_tensorboard,
    "lightning": read_lightning,
    "stylegan": read_stylegan,
    "wandb-csv": read_wandb_csv,
    "mlflow-csv": read_mlflow_csv,
    "mlruns": read_mlruns,
}


def read(source: Source) -> list[Row]:
    """All of a log's rows, steps increasing; a LogError for a log that cannot be read."""
    try:
        return list(READERS[source.format](source.path))
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise LogError(f"{source.path.name}: {exc}") from None


# ---- detection --------------------------------------------------------------------------

def _first_line(path: Path, limit: int = 1 << 20) -> str:
    """The first line that is not blank (at most ``limit`` characters of it), "" for an
    empty file, a NUL character for one that is not text."""
    try:
        with _open_text(path) as f:
            while True:
                text = f.readline(limit)
                if not text:
                    return ""
                if text.strip():
                    return text.strip()
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return "\0"  # binary: no text format


def _is_stylegan(obj: dict) -> bool:
    return "Progress/kimg" in obj or "Progress/tick" in obj or any(
        isinstance(v, dict) and "mean" in v and "num" in v for v in obj.values())


def _is_event_file(path: Path) -> bool:
    return "tfevents" in path.name


def _detect_file(path: Path) -> str | None:
    if _is_event_file(path):
        return "tensorboard"
    first = _first_line(path)
    if first == "" or first.startswith("{"):
        try:
            obj = json.loads(first) if first else {}
        except ValueError:
            obj = {}
        if isinstance(obj, dict) and _is_stylegan(obj):
            return "stylegan"
        if isinstance(obj, dict) and "_step" in obj and "ganwatch_record" not in obj:
            return "wandb-jsonl"
        return "record"  # read_record names what is wrong with a line
    if first == "\0":
        return None
    try:
        header = {h.strip() for h in next(csv.reader(io.StringIO(first)))}
    except (csv.Error, StopIteration):
        return None
    if {"key", "value", "step"} <= header:
        return "mlflow-csv"
    if "_step" in header:
        return "wandb-csv"
    if "step" in header:
        return "lightning"
    return None


def _run_name(path: Path) -> str:
    """An MLflow run's name (tags/mlflow.runName), else its directory's."""
    run = path.parent if path.name == "metrics" else path
    try:
        name = (run / "tags" / "mlflow.runName").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    return name or run.name


def _logs_in(root: Path) -> list[Source]:
    """The logs a directory holds (a directory of event files counts once)."""
    found: list[Source] = []
    if root.name == "metrics" or (root / "metrics").is_dir():
        return [Source("mlruns", root, _run_name(root))]
    event_dirs = sorted({p.parent for p in root.rglob("*tfevents*") if p.is_file()})
    found += [Source("tensorboard", d, d.name) for d in event_dirs]
    found += [Source("lightning", p, p.parent.name) for p in sorted(root.rglob("metrics.csv"))]
    found += [Source("stylegan", p, p.parent.name) for p in sorted(root.rglob("stats.jsonl"))]
    found += [Source("mlruns", d.parent, _run_name(d.parent))
              for d in sorted(root.rglob("metrics"))
              if d.is_dir() and (d.parent / "meta.yaml").is_file()
              and ".trash" not in d.relative_to(root).parts]
    return found


def detect(path: Path) -> Source:
    """Which log ``path`` is (a file, or a directory holding exactly one log) and the reader's
    input; a LogError saying which formats are known when it is none of them, or which logs a
    directory holds when it holds several."""
    path = Path(path)
    if path.is_file():
        fmt = _detect_file(path)
        if fmt is None:
            raise LogError(f"{path} is not a log ganwatch can read; it reads "
                           f"{known_formats()}")
        name = path.parent.name if fmt in ("lightning", "stylegan", "tensorboard") \
            and path.parent.name else path.name.split(".")[0]
        return Source(fmt, path, name or path.stem)
    if not path.is_dir():
        raise LogError(f"no file or directory at {path}")
    found = _logs_in(path)
    if not found:
        raise LogError(f"no log ganwatch can read in {path}; it reads {known_formats()}")
    if len(found) > 1:
        listed = ", ".join(f"{s.path.relative_to(path).as_posix() or '.'} ({s.format})"
                           for s in found[:4])
        raise LogError(f"{path} holds {len(found)} logs ({listed}"
                       f"{', ...' if len(found) > 4 else ''}): import one of them")
    source = found[0]
    return source._replace(name=source.name or path.resolve().name)


__all__ = ["FORMATS", "RECORD_FORMATS", "LogError", "Row", "Source", "detect",
           "read"]


def holds_logs(path: Path) -> bool:
    """Whether a directory holds a log some reader here reads (one, or several)."""
    return Path(path).is_dir() and bool(_logs_in(Path(path)))
