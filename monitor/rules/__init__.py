"""The rules engine: pure rules (``library``), the alert lifecycle (``lifecycle``), per-run
settings (``config``) and evaluation on ingest (``engine``)."""

from monitor.rules.core import Finding, Rule, Window
from monitor.rules.library import RULES

__all__ = ["RULES", "Finding", "Rule", "Window"]
