"""What the server writes as JSON, in one pure module (the rules use it too): text it can
store and quote, non-finite numbers, and trees that always encode.

Text: valid Unicode (no lone surrogates, which a JSON "\ud800" escape can carry but UTF-8
cannot encode) and no NUL (PostgreSQL's text cannot hold one); ``shown`` and ``quoted`` put
any value in an error message, JSON-safe and short.

Non-finite numbers are spelled here only (tests/unit/test_architecture.py checks it).
JSON has no literal for NaN or Infinity, and NaN and Infinity are data here (a loss that blew
up is the most important point of a run). Everything the server writes (series, the live
stream, alert evidence, stored configs, webhook payloads) carries them as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, which every JSON reader takes and the dashboard
turns back into numbers.
"""

from __future__ import annotations

import math
from typing import Any

NAN = "NaN"
INFINITY = "Infinity"
NEG_INFINITY = "-Infinity"

_INFINITIES = {math.inf: INFINITY, -math.inf: NEG_INFINITY}
MAX_DEPTH = 32  # nesting of a run's config (and of any request body) at most this deep


def json_number(value: float) -> float | str:
    """``value`` as the server writes it in JSON: itself if finite, else its string. On the
    read paths' hot loop, so one comparison for a finite number and one dictionary probe."""
    if value != value:
        return NAN
    return _INFINITIES.get(value, value)


def text_fault(value: str) -> str | None:
    """Why a string is not text the server stores, or None when it is."""
    if "\x00" in value:
        return f"holds a NUL character (at {value.index(chr(0))})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"holds a lone surrogate (\\u{ord(value[exc.start]):04x} at {exc.start}), "
                "which is not Unicode text")
    return None


def shown(value: str, limit: int = 60) -> str:
    """A string as an error message may quote it: JSON-safe and short."""
    value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value if len(value) <= limit else value[:limit] + "..."


def quoted(value: Any, limit: int = 80) -> str:
    """Any value quoted for an error message as repr() writes it: JSON-safe and short."""
    return shown(repr(value), limit)


def json_safe(value: Any, depth: int = 0, *, max_items: int = 50,
              max_chars: int = 2000, keep_other: bool = False) -> Any:
    """A value that always encodes as JSON: lone surrogates escaped, non-finite numbers as the
    API's strings, anything else as its str() (or as it is, with ``keep_other``); long
    strings, lists and objects and deep nesting cut short. For echoing what a client sent,
    and for data stored before the checks above existed."""
    if isinstance(value, str):
        return shown(value, max_chars) if (len(value) > max_chars or text_fault(value)) \
            else value
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return json_number(value)
    if depth >= MAX_DEPTH:
        return "..."
    more = {"max_items": max_items, "max_chars": max_chars, "keep_other": keep_other}
    if isinstance(value, dict):
        items = list(value.items())
        out = {json_safe(str(k), depth + 1, **more): json_safe(v, depth + 1, **more)
               for k, v in items[:max_items]}
        if len(items) > max_items:
            out["..."] = f"{len(items) - max_items} more"
        return out
    if isinstance(value, (list, tuple)):
        out = [json_safe(v, depth + 1, **more) for v in value[:max_items]]
        if len(value) > max_items:
            out.append(f"... {len(value) - max_items} more")
        return out
    if keep_other:
        return value
    if isinstance(value, bytes):
        return json_safe(value.decode("utf-8", "replace"), depth, **more)
    return json_safe(str(value), depth, **more)


def stored_safe(value: Any) -> Any:
    """Stored JSON as a response may carry it, whatever was stored (nothing cut short but
    nesting past MAX_DEPTH)."""
    return json_safe(value, max_items=10**9, max_chars=10**9, keep_other=True)
