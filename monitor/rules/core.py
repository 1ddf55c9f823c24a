"""The pieces every rule shares: the window a rule sees, what it finds, and how a rule is declared.

A rule is a pure function ``(window, params) -> Finding | None``: no database, no clock (the
window carries the time a caller measured), no state.
Everything that needs memory (how long a condition has held, cooldowns, escalation)
lives in the alert lifecycle (``monitor.rules.lifecycle``), and its state in the database.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SEVERITIES = ("warning", "critical")

# The bounds of numeric parameters, (smallest, largest), declared with each parameter as the
# third element of its (default, meaning, bounds); a value outside them (or not finite) is a
# 422 naming the parameter and its bounds. Finite and modest on purpose: an Infinity or 1e300
# would pass any comparison yet break evaluation (a window is read from the database).
STEPS = (0, 10**12)        # a count of steps (holds, warm-up, cadence)
WINDOW = (1, 100_000)      # steps of points a rule reads back at each evaluation
SECONDS = (0, 7 * 86400)   # a duration on the clock
LEVEL = (0, 1e12)          # a threshold on a loss, a norm, a standard deviation...
SHARE = (0, 1)             # a probability, a correlation, a share
SCORE = (-1e12, 1e12)      # one of D's outputs, which need not be a probability

# Lifecycle parameters every rule has, in steps unless named otherwise.
COMMON_PARAMS: dict[str, tuple] = {
    "warmup": (0, "steps at the start of a run during which the rule is not evaluated", STEPS),
    "for": (0, "steps the condition must hold before the alert fires (pending until then)",
            STEPS),
    "clear_for": (50, "steps the condition must stay clear before a firing alert resolves",
                  STEPS),
    "cooldown": (200, "steps after a resolution before the same alert may fire again", STEPS),
    "escalate_after": (0, "steps firing before a warning becomes critical (0: never)", STEPS),
    "every": (0, "evaluate once per this many steps (0: a twentieth of the rule's window); a "
                 "trend over 1,000 steps does not change in one", STEPS),
    "severity": ("warning", "severity when it fires: warning or critical"),
}


@dataclass(frozen=True)
class SeriesView:
    """One series' points up to the evaluation step, oldest first (NaN/Inf kept as they are)."""

    steps: list[int]
    values: list[float]

    def since(self, step: int) -> list[float]:
        """Values at steps strictly after ``step``."""
        return self.values[bisect.bisect_right(self.steps, step):]

    def last_steps(self, span: int, end: int) -> tuple[list[int], list[float]]:
        """(steps, values) within the last ``span`` steps ending at ``end``: (end - span, end]."""
        i = bisect.bisect_right(self.steps, end - span)
        return self.steps[i:], self.values[i:]


@dataclass(frozen=True)
class Window:
    """What a rule sees: a run's series up to ``step``, the step of the previous evaluation,
    and, explicitly, the two things that are not points.

    ``subject`` is the network or layer a per-subject rule is evaluated for ("" for the
    others): the evaluation hands each subject its own view (``for_subject``), never changes
    a shared window. ``silent_for`` is the clock: seconds since the run's last point, as the
    caller measured them (0 on ingest, where points have just arrived). ``run_id`` only names
    the run in log lines. ``roles``: which of the run's keys plays each role a rule reads
    (``vocabulary.resolve``), so a rule asking for ``d_loss`` reads the run's ``Loss_D``.
    """

    step: int
    series: dict[str, SeriesView]
    previous_step: int = -1
    subject: str = ""
    silent_for: float = 0.0
    run_id: str = ""
    roles: Mapping[str, str] = field(default_factory=dict)

    def for_subject(self, subject: str) -> Window:
        """The same window (its series shared, not copied) for one subject."""
        return replace(self, subject=subject)

    def get(self, key: str) -> SeriesView | None:
        """The series a rule asks for: a role's key, or any key by its own name."""
        return self.series.get(self.roles.get(key, key))

    def last(self, key: str, span: int) -> tuple[list[int], list[float]]:
        view = self.get(key)
        return view.last_steps(span, self.step) if view else ([], [])

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.series if k.startswith(prefix))


@dataclass(frozen=True)
class Finding:
    """The condition holds at this step: what was seen, against which threshold."""

    message: str
    value: float
    threshold: float
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None  # set to "critical" when a critical threshold is crossed


@dataclass(frozen=True)
class Rule:
    name: str
    title: str
    sign: str  # the folklore it encodes
    check: Callable[[Window, dict], Finding | None]
    # name -> (default, meaning) or, for numbers, (default, meaning, (smallest, largest));
    # COMMON_PARAMS added (a rule re-declaring one of them keeps its bounds unless it gives its
    # own)
    params: dict[str, tuple]
    action: str  # the recommended action, naming the ganhacks trick to try
    subjects: Callable[[Window], list[str]] | None = None  # one fingerprint per subject
    inputs: tuple[str, ...] = ()  # series keys (or prefixes ending in "/") it reads
    # the inputs it cannot watch without (None: all of ``inputs``); any one of a group will do
    needs: tuple[tuple[str, ...], ...] | None = None
    # (parameter, input): the input is needed too while the parameter is set (non-zero)
    needs_when: tuple[tuple[str, str], ...] = ()
    families: frozenset[str] | None = None  # the loss families it applies to (None: all)
    source: str = ""  # where the sign comes from, for the families it was not written for

    def __post_init__(self) -> None:
        for name, default in self.defaults().items():
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                lo, hi = self.bounds(name) or (None, None)
                if lo is None or not lo <= default <= hi:
                    raise ValueError(f"rule {self.name}: parameter {name} needs bounds that "
                                     f"hold its default {default!r}")

    def defaults(self) -> dict[str, Any]:
        out = {k: v[0] for k, v in COMMON_PARAMS.items()}
        out.update({k: v[0] for k, v in self.params.items()})
        return out

    def bounds(self, name: str) -> tuple[float, float] | None:
        """(smallest, largest) a numeric parameter may be, or None for others."""
        for declared in (self.params.get(name), COMMON_PARAMS.get(name)):
            if declared is not None and len(declared) > 2:
                return declared[2]
        return None

    def documented_params(self) -> dict[str, dict[str, Any]]:
        merged = {**COMMON_PARAMS, **self.params}
        out = {}
        for k, v in merged.items():
            out[k] = {"default": v[0], "description": v[1]}
            if self.bounds(k) is not None:
                out[k]["minimum"], out[k]["maximum"] = self.bounds(k)
        return out


# -- small numerics, pure Python (the server never needs numpy or torch) --------------------


def finite(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def median(values: list[float]) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def stdev(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's r; 0 when either side is constant."""
    if len(xs) < 3:
        return 0.0
    mx, my = mean(xs), mean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return 0.0
    return sxy / math.sqrt(sxx * syy)


def fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"

