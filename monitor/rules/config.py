"""Rule settings: the defaults (in ``library.RULES``), a run's overrides, and their validation."""

from __future__ import annotations

from typing import Any

from monitor.rules.core import SEVERITIES
from monitor.rules.library import RULES


def _check_value(rule: str, name: str, value: Any, default: Any) -> Any:
    where = f"rules.{rule}.{name}"
    if isinstance(default, bool) or isinstance(value, bool):
        raise ValueError(f"{where} must be a number, not {value!r}")
    if isinstance(default, (int, float)):
        if not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"{where} must be a number, not {value!r}")
        if value < 0:
            raise ValueError(f"{where} must not be negative, not {value!r}")
        return int(value) if isinstance(default, int) and float(value).is_integer() else value
    if name == "severity" and value not in SEVERITIES:
        raise ValueError(f"{where} must be one of {', '.join(SEVERITIES)}, not {value!r}")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a non-empty string, not {value!r}")
    return value


def validate_overrides(overrides: dict[str, Any]) -> tuple[dict[str, dict], list[str]]:
    """Check ``{"rule": {"param": value}}`` (or ``{"rule": False}`` to silence a rule).

    Returns (overrides, silenced rule names); raises ValueError naming the first bad entry.
    """
    if not isinstance(overrides, dict):
        raise ValueError("rules must be an object mapping rule names to settings")
    clean: dict[str, dict] = {}
    silenced: list[str] = []
    for rule, settings in overrides.items():
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; the rules are: {', '.join(RULES)}")
        if settings is False:
            silenced.append(rule)
            continue
        if settings is True or settings is None:
            continue
        if not isinstance(settings, dict):
            raise ValueError(f"rules.{rule} must be an object of parameters or false, "
                             f"not {settings!r}")
        defaults = RULES[rule].defaults()
        for name, value in settings.items():
            if name not in defaults:
                raise ValueError(f"rule {rule!r} has no parameter {name!r}; its parameters "
                                 f"are: {', '.join(defaults)}")
            clean.setdefault(rule, {})[name] = _check_value(rule, name, value, defaults[name])
    return clean, silenced


def effective_params(overrides: dict | None) -> dict[str, dict[str, Any]]:
    """Every rule's parameters for a run: the defaults with the run's overrides on top."""
    overrides = overrides or {}
    return {name: {**rule.defaults(), **overrides.get(name, {})} for name, rule in RULES.items()}
