"""The client's warnings: the ``ganwatch`` logger, with one handler that writes through
``tqdm.write`` while a tqdm bar is on screen (so a warning never tears a progress bar) and to
stderr otherwise. A warning that repeats is shown at most once per ``REPEAT_S`` seconds; the
next one shown says how many were held back, and ``flush_held()`` (at a run's finish) reports
the rest.

The logger is a standard one: ``logging.getLogger("ganwatch").setLevel(logging.ERROR)``
silences the client, and adding handlers of your own sends its warnings elsewhere (it does not
propagate to the root logger, so a basicConfig does not print them twice).
"""

from __future__ import annotations

import logging
import sys
import threading
import time

REPEAT_S = 30.0     # a warning of the same kind at most this often
MAX_KINDS = 1000    # kinds remembered (the oldest is forgotten past this)

logger = logging.getLogger("ganwatch")


class TqdmAwareHandler(logging.Handler):
    """Writes each record on its own line: through tqdm.write while a tqdm bar is active,
    else to the current sys.stderr (looked up per record, so redirection is honoured)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            tqdm_module = sys.modules.get("tqdm")
            bars = getattr(getattr(tqdm_module, "tqdm", None), "_instances", None)
            if bars:
                tqdm_module.tqdm.write(line, file=sys.stderr)
            else:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
        except Exception:  # a warning must never raise into training
            pass


if not any(isinstance(h, TqdmAwareHandler) for h in logger.handlers):
    _handler = TqdmAwareHandler()
    _handler.setFormatter(logging.Formatter("ganwatch: %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

_lock = threading.Lock()
_last: dict[str, float] = {}     # kind -> when it was last shown (monotonic)
_held: dict[str, tuple[int, str]] = {}  # kind -> (warnings held back, the latest text)


def warn(text: str, *, kind: str | None = None) -> None:
    """Log a warning; ``kind`` (default: the text itself) groups repeats of one warning whose
    text varies. Never raises."""
    try:
        kind = kind or text
        now = time.monotonic()
        with _lock:
            last = _last.get(kind)
            if last is not None and now - last < REPEAT_S:
                count, _ = _held.get(kind, (0, text))
                _held[kind] = (count + 1, text)
                return
            if len(_last) >= MAX_KINDS and kind not in _last:
                _last.pop(next(iter(_last)))
            _last[kind] = now
            count, _ = _held.pop(kind, (0, text))
        if count:
            text += f" ({count} more like this in the last {now - last:.0f} s not shown)"
        logger.warning(text)
    except Exception:
        pass


def flush_held() -> None:
    """Report the warnings still held back, one line per kind."""
    with _lock:
        held = dict(_held)
        _held.clear()
    for count, text in held.values():
        try:
            logger.warning(f"{text} ({count} more like this not shown)")
        except Exception:
            pass
