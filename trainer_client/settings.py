"""The client's settings, in one place: each is an ``init()`` argument, an environment variable
and a default, taken in that order (an explicit argument wins, then the environment, then the
default), as the server's settings object reads its own (monitor/settings.py).

A value the environment gives that cannot be read (``GANWATCH_FLUSH_INTERVAL=soon``) is a
warning, and the default is used; the client never raises into the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:8765"  # the one default URL (the CLI's too)


@dataclass(frozen=True)
class Setting:
    argument: str  # init()'s keyword ("" where there is none)
    env: str
    default: Any
    parse: Callable[[str], Any]
    meaning: str


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{text!r} is not a positive number")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(f"{text!r} is a negative number")
    return value


def _switch(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


SETTINGS: dict[str, Setting] = {s.argument or s.env: s for s in [
    Setting("server", "GANWATCH_URL", DEFAULT_SERVER, str, "the ganwatch server's address"),
    Setting("run_id", "GANWATCH_RUN_ID", None, str,
            "continue this run (a scheduler's retry continues the same run)"),
    Setting("token", "GANWATCH_TOKEN", None, str,
            "the bearer token for a server that needs one (`ganwatch token create`)"),
    Setting("spool_dir", "GANWATCH_SPOOL_DIR", None, str,
            "where unsent data waits (default `~/.cache/ganwatch/spool`, or under "
            "`XDG_CACHE_HOME`)"),
    Setting("flush_interval", "GANWATCH_FLUSH_INTERVAL", 1.0, _positive,
            "seconds between sends of what was logged"),
    Setting("exit_timeout", "GANWATCH_EXIT_TIMEOUT", 30.0, _non_negative,
            "seconds the process waits at exit for unsent data to go out (the rest stays "
            "spooled)"),
    Setting("", "GANWATCH_DISABLED", False, _switch,
            "`1` turns the client off: init() returns a run that does nothing"),
]}


def resolve(name: str, explicit: Any = None, *, warn: Callable[[str], None] | None = None
            ) -> Any:
    """The setting's value: ``explicit`` when given (not None), else the environment's, else
    the default. A variable that cannot be read warns (through ``warn``) and gives the
    default."""
    setting = SETTINGS[name]
    if explicit is not None:
        return explicit
    text = os.environ.get(setting.env)
    if text is None or text == "":
        return setting.default
    try:
        return setting.parse(text)
    except ValueError as exc:
        if warn is not None:
            warn(f"{setting.env}={text!r} cannot be read ({exc}); using "
                 f"{setting.default!r}")
        return setting.default
