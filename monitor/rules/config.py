"""Rule settings: the defaults (in ``library.RULES``), a run's overrides, and their validation."""

from __future__ import annotations

import math
from typing import Any

from monitor.encoding import quoted, text_fault
from monitor.rules.core import SEVERITIES
from monitor.rules.library import FAMILY_PARAMS, RULES

MAX_TEXT = 200  # a string parameter names a series key, which is at most this long
# string parameters that are not series keys: the values they may take
CHOICES = {"severity": SEVERITIES, "scores": ("auto", "probabilities", "logits", "raw")}


def _check_value(rule: str, name: str, value: Any, default: Any,
                 bounds: tuple[float, float] | None = None) -> Any:
    where = f"rules.{rule}.{name}"
    if isinstance(default, bool) or isinstance(value, bool):
        raise ValueError(f"{where} must be a number, not {quoted(value)}")
    if isinstance(default, (int, float)):
        if not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, not {quoted(value)}")
        lo, hi = bounds if bounds is not None else (0, math.inf)
        span = f"between {lo:g} and {hi:g}"
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf if value > 0 else -math.inf
        if not math.isfinite(number):
            raise ValueError(f"{where} must be a finite number {span}, not {quoted(value)}")
        if number < 0 <= lo:
            raise ValueError(f"{where} must not be negative (it must be {span}), not "
                             f"{quoted(value)}")
        if not lo <= number <= hi:
            raise ValueError(f"{where} must be {span}, not {quoted(value)}")
        return int(value) if isinstance(default, int) and float(value).is_integer() else value
    choices = CHOICES.get(name)
    if choices is not None and value not in choices:
        raise ValueError(f"{where} must be one of {', '.join(choices)}, not {quoted(value)}")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string, not {quoted(value)}")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{where} must be at most {MAX_TEXT} characters, not {len(value)}")
    fault = text_fault(value)
    if fault is not None:
        raise ValueError(f"{where}: the text {fault}")
    return value


def validate_overrides(overrides: dict[str, Any]) -> tuple[dict[str, dict], list[str]]:
    """Check ``{"rule": {"param": value}}`` (or ``{"rule": False}`` to silence a rule).

    Returns (overrides, silenced rule names); raises ValueError naming the first bad entry.
    """
    if not isinstance(overrides, dict):
        raise ValueError("rules must be an object mapping rule names to settings")
    if len(overrides) > 2 * len(RULES):
        raise ValueError(f"rules has {len(overrides)} entries; there are {len(RULES)} rules")
    clean: dict[str, dict] = {}
    silenced: list[str] = []
    for rule, settings in overrides.items():
        if rule not in RULES:
            raise ValueError(f"unknown rule {quoted(rule)}; the rules are: {', '.join(RULES)}")
        if settings is False:
            silenced.append(rule)
            continue
        if settings is True or settings is None:
            continue
        if not isinstance(settings, dict):
            raise ValueError(f"rules.{rule} must be an object of parameters or false, "
                             f"not {quoted(settings)}")
        defaults = RULES[rule].defaults()
        for name, value in settings.items():
            if name not in defaults:
                raise ValueError(f"rule {rule!r} has no parameter {quoted(name)}; its "
                                 f"parameters are: {', '.join(defaults)}")
            clean.setdefault(rule, {})[name] = _check_value(rule, name, value, defaults[name],
                                                            RULES[rule].bounds(name))
    return clean, silenced


def effective_params(overrides: dict | None,
                     family: str | None = None) -> dict[str, dict[str, Any]]:
    """Every rule's parameters for a run: the defaults, the loss family's thresholds
    (``library.FAMILY_PARAMS``) on top, and the run's overrides on top of those."""
    overrides = overrides or {}
    layer = FAMILY_PARAMS.get(family or "", {})
    return {name: {**rule.defaults(), **layer.get(name, {}), **overrides.get(name, {})}
            for name, rule in RULES.items()}
