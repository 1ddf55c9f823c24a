"""A run's scalars as JSON Lines, one step per line: what ``init(record=PATH)`` and the trainer's
``--record FILE`` write, and what ``ganwatch replay FILE`` reads.

    {"ganwatch_record": 1, "name": "dcgan-ring8", "config": {...}}     (optional first line)
    {"step": 0, "wall_time": 1763800000.1, "d_loss": 1.38, "g_loss": 0.69, "grad_norm/G": 2.1}
    {"step": 1, "d_loss": "NaN", ...}

Non-finite values are written as the strings "NaN", "Infinity" and "-Infinity" so that any
JSON reader takes the file; bare NaN tokens are read too. ``_step`` and ``global_step`` are
accepted for ``step`` (W&B and TensorBoard exports); other keys starting with ``_`` and values
that are not numbers (text, media) are skipped. A name ending in ``.gz`` is read and written
gzip-compressed.
"""

from __future__ import annotations

import gzip
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FORMAT_KEY = "ganwatch_record"
STEP_KEYS = ("step", "_step", "global_step")
# How a record spells NaN and the infinities, and the spellings it reads back (other tools'
# exports write "nan"/"inf"). The points batches the sender posts carry bare NaN/Infinity
# tokens instead (json's own, which the server accepts), so this is the client's one encoder.
NON_FINITE = {"NaN": math.nan, "nan": math.nan, "Infinity": math.inf, "inf": math.inf,
              "-Infinity": -math.inf, "-inf": -math.inf}


def _open(path: Path, mode: str):
    """Text I/O on the file, gzip-compressed when its name ends in .gz."""
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def encode_number(value: float) -> float | str:
    """A value as a record writes it: finite numbers as they are, NaN and the infinities as
    the strings "NaN", "Infinity" and "-Infinity" that any JSON reader takes."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _drop_cut_line(path: Path) -> None:
    """Truncate a plain record that does not end in a newline (its writer was killed mid-line)
    after its last whole line, so that lines appended to it stay whole."""
    with open(path, "rb+") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        end, chunk = size, 1 << 16
        while end > 0:  # bounded: the file's size
            start = max(0, end - chunk)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                f.truncate(start + cut + 1)
                return
            end = start
        f.truncate(0)


class Recorder:
    """Appends steps to a JSON Lines file; written from the client's sender thread."""

    def __init__(self, path: str | Path, header: dict, append: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        fresh = not append or not self.path.exists() or self.path.stat().st_size == 0
        if not fresh and self.path.suffix != ".gz":
            _drop_cut_line(self.path)  # a killed run's half line: continue after the whole ones
            fresh = self.path.stat().st_size == 0
        self._file = _open(self.path, "a" if append else "w")
        if fresh:
            self._write_line({FORMAT_KEY: 1, **header})

    def _write_line(self, obj: dict) -> None:
        self._file.write(json.dumps(obj, default=str) + "\n")

    def write(self, series: dict[str, tuple[list, list, list]]) -> None:
        """Write a batch given as {key: (steps, values, wall_times)}, one line per step."""
        rows: dict[int, dict] = {}
        for key, (steps, values, wall_times) in series.items():
            for step, value, wall_time in zip(steps, values, wall_times):
                row = rows.get(step)
                if row is None:
                    row = rows[step] = {"step": step, "wall_time": round(wall_time, 3)}
                row[key] = encode_number(value)
        with self._lock:
            if self._file.closed:
                return
            for step in sorted(rows):
                self._write_line(rows[step])
            self._file.flush()  # a run that dies keeps what it recorded

    def close(self) -> None:
        with self._lock:
            self._file.close()


class RecordError(ValueError):
    """A line of a record that cannot be read; the message names the line."""


def _number(value) -> float | None:
    """A value as a float, or None when it is not a number (text, media, histograms...)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return NON_FINITE.get(value)
    return None


@dataclass(frozen=True)
class Line:
    number: int
    header: dict | None  # the first line's header, else None
    step: int | None
    wall_time: float | None
    values: dict[str, float]
    skipped: int  # values that are not numbers (text, media): not series, left out
    cut: bool = False  # the last line, written half: its run was killed mid-write; no step


def read_record(path: Path) -> Iterator[Line]:
    """Yield the record's lines in order. Numbers (and "NaN"/"Infinity") become points; other
    values are counted as skipped. Raises RecordError naming the first line that is not a step
    object (or the header). The last line may be cut short (a run killed by OOM, SIGKILL or a
    preemption while writing it): it is yielded as a ``cut`` Line with no step, after every
    whole line; a line that is not JSON with lines after it is still an error."""
    cut: RecordError | None = None  # a line that is not JSON: an error unless it is the last
    with _open(path, "r") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if cut is not None:
                raise cut
            where = f"{path.name} line {number}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                cut = RecordError(f"{where}: not JSON ({exc.msg})")
                cut_number = number
                continue
            if not isinstance(obj, dict):
                raise RecordError(f"{where}: expected a JSON object, one step per line")
            if FORMAT_KEY in obj:
                if number != 1:
                    raise RecordError(f"{where}: the {FORMAT_KEY} header must be the first line")
                yield Line(number, obj, None, None, {}, 0)
                continue
            step_key = next((k for k in STEP_KEYS if k in obj), None)
            if step_key is None:
                raise RecordError(f"{where}: no step (one of {', '.join(STEP_KEYS)})")
            step = obj[step_key]
            if isinstance(step, bool) or not isinstance(step, (int, float)) or step < 0 \
                    or not float(step).is_integer():
                raise RecordError(f"{where}: the step must be a whole number >= 0, not "
                                  f"{json.dumps(step)[:40]}")
            wall_time = _number(obj.get("wall_time", obj.get("_timestamp")))
            if wall_time is not None and not math.isfinite(wall_time):
                wall_time = None
            values, skipped = {}, 0
            for key, value in obj.items():
                if key in STEP_KEYS or key == "wall_time" or key.startswith("_") \
                        or value is None:
                    continue
                x = _number(value)
                if x is None:
                    skipped += 1
                else:
                    values[key] = x
            yield Line(number, None, int(step), wall_time, values, skipped)
    if cut is not None:
        yield Line(cut_number, None, None, None, {}, 0, cut=True)
