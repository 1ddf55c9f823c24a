"""The rules engine: pure rules (``library``), the alert lifecycle (``lifecycle``), per-run
settings (``config``) and evaluation as a pure function (``evaluate``). No database: the
ingest pipeline (``monitor.ingest``) reads the window and applies the transitions."""

from monitor.rules.core import Finding, Rule, Window
from monitor.rules.library import RULES

__all__ = ["RULES", "Finding", "Rule", "Window"]
